"""Training jobs from request to readiness: request, start (invoke the endpoint once), record the result, sweep."""
