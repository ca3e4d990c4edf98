"""The DynamoDB table: one helper (`table`) and one adapter per feature (`photos`, `jobs`, `registry`, `users`)."""
