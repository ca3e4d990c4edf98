"""Local stand-ins built from real parts: resources from template.yaml on moto, Lambda-style event sources."""
