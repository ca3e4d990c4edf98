"""Adapters to AWS services (in the ports-and-adapters sense): each takes an injected boto3 client and turns its
errors into `avatar.errors`."""
