"""Every message that crosses a boundary of the system, as versioned pydantic models (light imports only).

- `api`: what every HTTP API request body shares (strict, no unknown fields).
- `events`: what other systems receive on the EventBridge bus.
- `orchestrator`: the orchestrator queue's messages.
- `training`: the options, plan and request of a fine-tune, the asynchronous invocation's manifest, its result and
  progress.
- `generation`: the generate request (API body and Triton inputs) and the images that come back.
- `sagemaker`: the asynchronous endpoint's SNS notification.
- `s3`: S3's ObjectCreated notification.
"""
