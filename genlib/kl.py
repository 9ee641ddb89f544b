"""Forward vs reverse KL fitting (lecture 2-5): placeholder module, filled by the KL issue."""
