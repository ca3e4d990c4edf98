"""Adapters to AWS services, one per service; each takes an injected boto3 client."""
