"""ESSOP package."""
