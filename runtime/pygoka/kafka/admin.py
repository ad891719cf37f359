"""The admin client of the topic manager and the lag reader, and the TopicAccessError of a failed request.

A request to brokers that refuse the TLS handshake or the SASL login only times out ("Failed while waiting for
controller"); the cause is reported to librdkafka's error callback. Admin keeps it, so the error names it.
"""

from __future__ import annotations

import concurrent.futures
from collections import deque
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from pygoka.errors import AuthenticationError, AuthorizationError, KafkaUnreachableError, TopicAccessError
from pygoka.kafka.config import Config

#: UNREACHABLE are librdkafka's error codes for a broker it cannot reach or that does not answer in time.
UNREACHABLE = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
                         KafkaError._RESOLVE, KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT})
#: AUTHORIZATION are the broker's error codes for a principal lacking an ACL.
AUTHORIZATION = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                           KafkaError.GROUP_AUTHORIZATION_FAILED})
#: AUTHENTICATION are the error codes of a failed TLS handshake or SASL login (certificate, user or password).
AUTHENTICATION = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED})
#: ACL_OPERATIONS are the ACL operations each action needs.
ACL_OPERATIONS = {"create": "Create", "delete": "Delete"}


def access_error(action: str, topic: str, error: KafkaError | None,
                 client_error: KafkaError | None = None) -> TopicAccessError:
    """access_error is the TopicAccessError subclass for a failed request on topic, naming what to change;
    client_error is what librdkafka reported meanwhile (a failed handshake behind a time-out)."""
    if error is None:
        error = KafkaError(KafkaError._TIMED_OUT, "no answer in time")
    detail = f"cannot {action} topic '{topic}': {error.name()}: {error.str()}"
    cause = error
    if client_error is not None and error.code() in UNREACHABLE:
        detail += f" (the client's last error: {client_error.name()}: {client_error.str()})"
        cause = client_error
    code = cause.code()
    kind: type[TopicAccessError] = TopicAccessError
    if code in AUTHENTICATION:
        kind = AuthenticationError
        detail += " (check the certificate authority, sasl.username and sasl.password)"
    elif code in UNREACHABLE:
        kind = KafkaUnreachableError
    elif code in AUTHORIZATION:
        kind = AuthorizationError
        detail += (f" (the principal needs the {ACL_OPERATIONS.get(action, 'Describe')} ACL on topic '{topic}'"
                   + (" or on the cluster)" if action == "create" else ")"))
    elif code == KafkaError.POLICY_VIOLATION:
        detail += " (refused by the broker's create.topic.policy.class.name; create it beforehand)"
    elif code == KafkaError.INVALID_REPLICATION_FACTOR:
        detail += " (set replication_factor to at most the number of brokers)"
    return kind(detail, topic=topic, kafka_error=cause)


class Admin:
    """Admin is an AdminClient (config: admin_config's) whose requests fail with TopicAccessErrors naming the
    cause, a failed TLS handshake or SASL login included."""

    def __init__(self, config: Config, timeout: float) -> None:
        # The last ones only: a client failing for hours reports an error a second.
        self._errors: deque[KafkaError] = deque(maxlen=100)
        settings: dict[str, Any] = {**config, "error_cb": self._errors.append}
        self.client = AdminClient(settings)
        self.timeout = timeout

    def result(self, future: Any, action: str, topic: str) -> Any:
        """result waits for an admin future, turning its failure into access_error's."""
        try:
            # librdkafka's own request timeout (self.timeout) answers first, with its error.
            return future.result(timeout=self.timeout + 5)
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            raise access_error(action, topic, error, self.client_error()) from exc
        except concurrent.futures.TimeoutError as exc:
            raise access_error(action, topic, None, self.client_error()) from exc

    def client_error(self) -> KafkaError | None:
        """client_error is the last TLS or SASL failure librdkafka reported, else its last error, else None."""
        self.client.poll(0)
        errors = list(self._errors)
        self._errors.clear()
        failed = [error for error in errors if error.code() in AUTHENTICATION]
        found = failed or errors
        return found[-1] if found else None
