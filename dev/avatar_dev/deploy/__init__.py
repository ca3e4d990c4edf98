"""Deploy tooling: what the SageMaker endpoints load (built here, uploaded to S3) and the images they run."""
