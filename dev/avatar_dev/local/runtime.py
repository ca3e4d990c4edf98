"""The whole deployed architecture on one machine, from real parts: `avatar stack up`, `make demo`, the e2e test.

- moto in server mode, with every resource created from `template.yaml` (`avatar_dev.local.template`);
- an event-source poller per SQS-triggered function and a timer per scheduled one, as the template configures them;
- the HTTP API on 127.0.0.1 with a local token issuer (`avatar_dev.local.http_api`);
- one local sagemaker-runtime: the asynchronous training endpoint runs the real LMI handler in worker processes
  (as many as `gpu/training/serving.properties` gives DJL), the multi-model endpoint is a real Triton server;
- an observer queue subscribed to the event bus by a rule, as another system would subscribe.
Everything stops in reverse order when the context exits, also when the code inside it raised.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatar.contracts.events import EVENT_SOURCE
from avatar.fine_tuning.lmi_handler import TrainingSettings, handle_training_request
from avatar.object_keys import ASYNC_FAILURES, ASYNC_OUTPUTS
from avatar_dev.local.event_sources import LambdaContextStub, SqsEventSource
from avatar_dev.local.http_api import (
    ExecutionEnvironments,
    TokenIssuer,
    handler_function,
    local_http_api,
    template_cors,
    template_routes,
)
from avatar_dev.local.stack import IntakeStack, reset_services, start_intake_stack

if TYPE_CHECKING:
    from avatar_dev.local.async_endpoint import AsyncEndpoint

logger = logging.getLogger(__name__)

STACK_NAME = "avatar-local"
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def lmi_answer(body: bytes, settings: TrainingSettings) -> bytes:
    """What the LMI container answers an invocation with: the handler's result as JSON, as `gpu/training/model.py`
    hands it to DJL Serving (a raise is the invocation's failure)."""
    result = handle_training_request(body, settings)
    return b"null" if result is None else result.model_dump_json().encode()


def _run_training(body: bytes, settings: dict[str, Any]) -> bytes:
    """One job in a worker process (module level, so a spawned process can import it)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # its notices would land between the demo's lines
    return lmi_answer(body, TrainingSettings.model_validate(settings))


class ProcessTrainingHandler:
    """Runs the LMI handler in worker processes, as DJL Serving runs `model.py` in its Python workers."""

    def __init__(self, settings: dict[str, Any], workers: int) -> None:
        self._settings = settings
        self._running = 0
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def __call__(self, body: bytes) -> bytes:
        """Run one job and wait for it (a failure re-raises here with the job's reason)."""
        self._running += 1
        try:
            return self._pool.submit(_run_training, body, self._settings).result()
        finally:
            self._running -= 1

    def close(self) -> None:
        """Stop the workers now, a job in progress included (its invocation then fails, as on a deleted endpoint)."""
        if self._running == 0:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        processes = list(getattr(self._pool, "_processes", {}).values())  # no public API to stop a running job
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)


def training_workers(properties: Path | None = None) -> int:
    """`maxWorkers` of the LMI container's serving.properties: how many jobs one instance runs at once."""
    from avatar_dev.paths import REPOSITORY

    path = properties or REPOSITORY / "gpu" / "training" / "serving.properties"
    for line in path.read_text().splitlines():
        if line.strip().startswith("maxWorkers="):
            return int(line.split("=", 1)[1])
    return 1


class CorrelationFormatter(logging.Formatter):
    """`time level logger: message [user_id=... photo_id=... job_id=...]`: the ids that tie one event together."""

    KEYS = ("user_id", "photo_id", "job_id", "model_version", "request_id", "outcome", "reason", "key")

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line, then every correlation id the record carries."""
        ids = " ".join(f"{key}={getattr(record, key)}" for key in self.KEYS if getattr(record, key, None) is not None)
        line = super().format(record)
        return f"{line} [{ids}]" if ids else line


class Poller:
    """Lambda's SQS event source for one function: polls until stopped; one log line per batch."""

    def __init__(self, source: SqsEventSource, name: str) -> None:
        self._source = source
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poller-{name}", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = self._source.poll_once(wait_seconds=1)
            except Exception:
                logger.exception("%s: polling failed", self._name)
                self._stop.wait(1)
                continue
            if result.received:
                logger.info("%s: %d message(s), %d failed", self._name, result.received, result.failed)

    def stop(self) -> None:
        """Stop after the batch in hand."""
        self._stop.set()
        self._thread.join(timeout=120)


class Timer:
    """A scheduled function: invoked every `seconds`, as an EventBridge schedule does."""

    def __init__(self, handler: Callable[..., Any], seconds: float, name: str) -> None:
        self._handler = handler
        self._seconds = seconds
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"timer-{name}", daemon=True)

    def start(self) -> None:
        """Start the schedule."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._handler({"source": "aws.events", "detail-type": "Scheduled Event"}, LambdaContextStub(self._name))
            except Exception:
                logger.exception("%s failed", self._name)

    def stop(self) -> None:
        """Stop the schedule."""
        self._stop.set()
        self._thread.join(timeout=60)


def _function_handler(resource: dict[str, Any]) -> str:
    properties = resource["Properties"]
    if "Handler" in properties:
        return str(properties["Handler"])
    return str(properties["ImageConfig"]["Command"][0])  # a container image function


@dataclass
class RunningStack:
    """What a client and a test need from the running stack."""

    resources: IntakeStack
    api_url: str
    aws_endpoint: str
    issuer: TokenIssuer
    observed_events_url: str
    serving_url: str

    def token(self, user: str) -> str:
        """A bearer token for a development user."""
        return self.issuer.token(user)

    def next_event(self, detail_type: str, user: str, *, timeout: float = 900.0) -> dict[str, Any]:
        """Wait for an event of ours about `user`, as a subscribed system receives it."""
        import time

        deadline = time.monotonic() + timeout
        sqs = self.resources.sqs
        while time.monotonic() < deadline:
            messages = sqs.receive_message(
                QueueUrl=self.observed_events_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                event = json.loads(message["Body"])
                kind = event["detail-type"]
                # Any model outcome of the user (failed instead of ready) ends the wait too: the caller decides.
                if event["detail"].get("user_id") == user and (kind == detail_type or kind.startswith("AvatarModel")):
                    sqs.delete_message(QueueUrl=self.observed_events_url, ReceiptHandle=message["ReceiptHandle"])
                    return dict(event)
        raise TimeoutError(f"no {detail_type} for {user} within {timeout:.0f} s")


def training_endpoint(resources: IntakeStack, handler: Callable[[bytes], bytes], *, workers: int = 1) -> AsyncEndpoint:
    """The asynchronous training endpoint as the deployment configures it: results under the bucket's
    `async-outputs/` and `async-failures/`, notifications to the template's two topics."""
    from avatar_dev.local.async_endpoint import AsyncEndpoint

    bucket = resources.bucket
    return AsyncEndpoint(
        name=os.environ["TRAINING_ENDPOINT_NAME"],
        handler=handler,
        s3=resources.s3,
        sns=resources.sns,
        output_path=f"s3://{bucket}/{ASYNC_OUTPUTS}",
        failure_path=f"s3://{bucket}/{ASYNC_FAILURES}",
        success_topic_arn=resources.stack.arns["TrainingSucceededTopic"],
        error_topic_arn=resources.stack.arns["TrainingFailedTopic"],
        max_concurrency=workers,
    )


def _observe_events(resources: IntakeStack) -> str:
    """A queue that receives every event of ours through a rule on the bus."""
    sqs, events = resources.sqs, resources.events
    url = sqs.create_queue(QueueName=f"{resources.stack.stack_name}-observed-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = resources.stack.physical["AvatarEventBus"]
    events.put_rule(Name="observe-avatar-events", EventBusName=bus, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    events.put_targets(Rule="observe-avatar-events", EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
    return str(url)


def _pollers(
    resources: IntakeStack, function_id: str, resource: dict[str, Any], source: dict[str, Any], concurrency: int
) -> list[Poller]:
    """The function's pollers: one, or up to `concurrency` (and the template's MaximumConcurrency), each invoking its
    own execution environment (a copy of the handler's module, as Lambda runs each invocation in its own)."""
    dotted = _function_handler(resource)
    count = max(1, min(concurrency, source.get("ScalingConfig", {}).get("MaximumConcurrency", concurrency)))
    if count == 1:
        return [Poller(resources.event_source(function_id, handler_function(dotted)), function_id)]
    environments = ExecutionEnvironments(dotted, max_concurrency=count)
    return [
        Poller(resources.event_source(function_id, environments.invoke), f"{function_id}-{index}")
        for index in range(count)
    ]


def _restore_environment(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)
    reset_services()


@contextmanager
def running_stack(
    work_dir: Path,
    *,
    cache_dir: Path,
    base_model: str = "tiny",
    training_defaults: dict[str, Any] | None = None,
    training_workers_count: int | None = None,
    extra_env: dict[str, str] | None = None,
    stack_name: str | None = None,
    queue_concurrency: int = 1,
) -> Iterator[RunningStack]:
    """Start everything; stop everything on exit (also after an exception). `queue_concurrency`: invocations of each
    SQS-triggered function at once (as Lambda scales a queue's consumers out, up to the template's
    MaximumConcurrency); 1, the default, keeps each queue's messages in order, as the tests and the demo expect."""
    from avatar_dev.local.aws import local_aws
    from avatar_dev.local.multi_model_endpoint import MultiModelRouter
    from avatar_dev.local.sagemaker_runtime import local_sagemaker_runtime
    from avatar_dev.local.serving import local_serving

    work_dir.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    with ExitStack() as cleanup:
        cleanup.callback(_restore_environment, saved)
        aws_endpoint = cleanup.enter_context(local_aws())
        if training_defaults is not None:
            os.environ["TRAINING_DEFAULTS"] = json.dumps(training_defaults)
        if base_model == "tiny":
            # The tiny model's native size, and what one request may cost on a CPU: it runs about 10-24 s per
            # step-megapixel here (a GPU runs SD 2.1 at ~0.3), so 1 keeps the heaviest request near 12 s, inside the
            # generate API's budget, as 42 does on a GPU (docs/figures.md).
            os.environ.update({"NATIVE_SIDE": "64", "MAX_STEP_MEGAPIXELS": "1.0"})
        os.environ.update(extra_env or {})
        # moto keeps its state per process, across servers: each stack gets its own names.
        resources = start_intake_stack(stack_name or f"{STACK_NAME}-{uuid.uuid4().hex[:6]}")
        os.environ.update(extra_env or {})  # over the template's function environments too
        template = resources.stack.template
        bucket = resources.bucket
        logger.info("resources created from template.yaml in moto at %s", aws_endpoint)

        serving = cleanup.enter_context(local_serving(work_dir / "triton", cache_dir=cache_dir, base_model=base_model))
        router = MultiModelRouter(
            triton_url=serving.server.http_url,
            repository=serving.server.repository,
            s3=resources.s3,
            bucket=bucket,
            prefix="models/",
        )
        cleanup.callback(router.close)
        settings = {
            "bucket": bucket,
            "base_model": base_model,
            "cache_dir": str(cache_dir),
            "work_dir": str(work_dir / "training"),
            "progress_interval_seconds": 1.0,
        }
        (work_dir / "training").mkdir(exist_ok=True)
        trainer = ProcessTrainingHandler(settings, training_workers_count or training_workers())
        endpoint = training_endpoint(resources, trainer, workers=training_workers_count or training_workers())
        cleanup.callback(endpoint.close)
        cleanup.callback(trainer.close)  # first: a running job ends at once, then the endpoint's threads
        runtime_url = cleanup.enter_context(
            local_sagemaker_runtime(realtime=router, asynchronous={endpoint.name: endpoint})
        )
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime_url
        reset_services()

        pollers = []
        for function_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] == "SQS":
                    if "FilterCriteria" in event["Properties"]:
                        raise NotImplementedError(f"{function_id}: local pollers do not apply FilterCriteria")
                    pollers += _pollers(resources, function_id, resource, event["Properties"], queue_concurrency)
                elif event["Type"] == "Schedule":
                    match = _RATE.fullmatch(event["Properties"]["Schedule"])
                    if match is None:
                        raise NotImplementedError(f"{function_id}: only rate() schedules run locally")
                    seconds = int(match[1]) * _UNIT_SECONDS[match[2].rstrip("s")]
                    timer = Timer(handler_function(_function_handler(resource)), seconds, function_id)
                    timer.start()
                    cleanup.callback(timer.stop)
        for poller in pollers:
            poller.start()
            cleanup.callback(poller.stop)

        issuer = TokenIssuer()
        web = _web_app(aws_endpoint)
        api_url = cleanup.enter_context(
            local_http_api(template_routes(template), issuer, cors=template_cors(template), web=web)
        )
        observed = _observe_events(resources)
        logger.info("local stack ready: API %s", api_url)
        yield RunningStack(
            resources=resources,
            api_url=api_url,
            aws_endpoint=aws_endpoint,
            issuer=issuer,
            observed_events_url=observed,
            serving_url=serving.server.http_url,
        )


def _web_app(aws_endpoint: str) -> Any:
    """The web app at the API's address, when it is built (`make web`, which `make setup` runs); else None."""
    from avatar.intake.uploads import IntakeLimits
    from avatar_dev.web import WebAppMissing, local_web_app

    try:
        return local_web_app(api_url="", aws_endpoint=aws_endpoint, max_photo_bytes=IntakeLimits().max_upload_bytes)
    except WebAppMissing as missing:
        logger.warning("no web app: %s", missing)
        return None
