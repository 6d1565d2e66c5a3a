"""Bridges to other libraries (torch); nothing below this package imports it."""
