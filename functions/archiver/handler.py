"""Archiver: the checkpoint table's stream into the S3 audit archive, one object per audit event.

Partial batch responses: Lambda retries from the first failed record instead of the whole batch
(the event source mapping also bisects failing batches and finally sends what still fails to the
dead-letter queue). Successful records may be delivered again: archiving is idempotent."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import composition
from signoff.audit.archiver import ArchiveError, archive_stream_record
from signoff.observability import log_invocation, logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    try:
        key = archive_stream_record(record, composition.archive())
    except ArchiveError as exc:
        # The reason and the record's id only: records carry the event's data.
        logger.error("audit event not archived", extra={"reason": str(exc), "event_id": record.event_id})
        raise
    if key is not None:
        metrics.add_metric(name="EventsArchived", unit=MetricUnit.Count, value=1)


@log_invocation()
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
