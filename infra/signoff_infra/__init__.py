"""Signoff's CDK constructs: one per concern, composed by SignoffStack."""
