"""Personal avatar models from selfies: the code shared by the Lambda services, the GPU side and the CLI."""
