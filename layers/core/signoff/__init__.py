"""Signoff core: the decision engine, the policy, the domain services and their ports."""
