"""Thin wrappers around confluent-kafka: client configuration and the injectable transport."""
