"""Create the template's resources on a local AWS (moto) from `template.yaml` itself, so the two cannot drift.

moto's CloudFormation cannot deploy this template (no SNS subscriptions, queue policies, SAM), so the resource
types the project uses are read here and created through the service APIs. Written by hand because no library
resolves CloudFormation intrinsics offline; only the intrinsics the template uses are supported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from avatar_dev.paths import TEMPLATE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

ACCOUNT_ID = "123456789012"


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML loader that keeps short-form intrinsics (`!Ref X`) as their long form (`{"Ref": "X"}`)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data."""
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 (SafeLoader subclass)
    return loaded


@dataclass
class LocalStack:
    """Physical names of the resources created for one stack name."""

    stack_name: str
    region: str
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> name / URL
    arns: dict[str, str] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """Resolve Ref, Fn::GetAtt, Fn::Sub and Fn::Join against the created resources."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self._ref(value["Ref"])
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            return self._get_att(logical, attribute)
        if "Fn::Sub" in value:
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub_var(m.group(1))), value["Fn::Sub"])
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.resolve(p)) for p in parts)
        return {k: self.resolve(v) for k, v in value.items()}

    def _pseudo(self) -> dict[str, str]:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def _ref(self, name: str) -> str:
        if name in self._pseudo():
            return self._pseudo()[name]
        if name in self.physical:
            return self.physical[name]
        parameter = self.template.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            return str(parameter["Default"])
        raise KeyError(f"cannot resolve Ref {name} locally")

    def _get_att(self, logical: str, attribute: str) -> str:
        if attribute == "Arn" and logical in self.arns:
            return self.arns[logical]
        raise KeyError(f"cannot resolve GetAtt {logical}.{attribute} locally")

    def _sub_var(self, name: str) -> str:
        if "." in name:
            logical, attribute = name.split(".", 1)
            return self._get_att(logical, attribute)
        return self._ref(name)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment variables as the template sets them (Globals merged)."""
        merged: dict[str, Any] = {}
        globals_env = self.template.get("Globals", {}).get("Function", {}).get("Environment", {})
        merged.update(globals_env.get("Variables", {}))
        properties = self.template["Resources"][logical_id]["Properties"]
        merged.update(properties.get("Environment", {}).get("Variables", {}))
        return {k: str(self.resolve(v)) for k, v in merged.items()}

    def sqs_event_source(self, function_id: str) -> dict[str, Any]:
        """The SQS event source of a function, with the queue resolved to its URL."""
        for event in self.template["Resources"][function_id]["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                properties = dict(event["Properties"])
                queue_logical = properties["Queue"]["Fn::GetAtt"][0]
                properties["QueueUrl"] = self.physical[queue_logical]
                properties["QueueLogicalId"] = queue_logical
                return properties
        raise KeyError(f"{function_id} has no SQS event source")


def _resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in template["Resources"].items() if v["Type"] == kind}


def provision(
    *,
    stack_name: str,
    region: str,
    dynamodb: DynamoDBClient,
    sqs: SQSClient,
    s3: S3Client,
    sns: Any = None,
    events: Any = None,
    secrets: Any = None,
    template: dict[str, Any] | None = None,
) -> LocalStack:
    """Create the template's tables, queues (with redrive), topics and their SQS subscriptions, event buses and
    their rules (with SQS targets), secrets (their initial value; moto's own key encrypts them), and buckets (with
    versioning and notifications). Queue policies and KMS keys are not needed by moto, so they are skipped."""
    template = template or load_template()
    stack = LocalStack(stack_name=stack_name, region=region, template=template)

    for logical, props in _resources_of(template, "AWS::DynamoDB::Table").items():
        name = f"{stack_name}-{logical}"
        table: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            table["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        created = dynamodb.create_table(**table)
        if "TimeToLiveSpecification" in props:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
        stack.physical[logical] = name
        stack.arns[logical] = created["TableDescription"]["TableArn"]

    queues = _resources_of(template, "AWS::SQS::Queue")
    # Dead-letter queues first, so the queues that redrive to them can name their ARN.
    for logical, props in sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1]):
        attributes: dict[str, Any] = {
            key: str(props[key])
            for key in (
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "DelaySeconds",
                "ReceiveMessageWaitTimeSeconds",
            )
            if key in props
        }
        if "RedrivePolicy" in props:
            redrive = stack.resolve(props["RedrivePolicy"])
            attributes["RedrivePolicy"] = (
                f'{{"deadLetterTargetArn": "{redrive["deadLetterTargetArn"]}", '
                f'"maxReceiveCount": "{redrive["maxReceiveCount"]}"}}'
            )
        url = sqs.create_queue(QueueName=f"{stack_name}-{logical}", Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
        stack.physical[logical] = url
        stack.arns[logical] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    if sns is not None:
        for logical in _resources_of(template, "AWS::SNS::Topic"):
            arn = sns.create_topic(Name=f"{stack_name}-{logical}")["TopicArn"]
            stack.physical[logical] = arn  # Ref of a topic is its ARN
            stack.arns[logical] = arn
        for logical, props in _resources_of(template, "AWS::SNS::Subscription").items():
            attributes = {"RawMessageDelivery": "true"} if props.get("RawMessageDelivery") else {}
            subscription = sns.subscribe(
                TopicArn=stack.resolve(props["TopicArn"]),
                Protocol=props["Protocol"],
                Endpoint=stack.resolve(props["Endpoint"]),
                Attributes=attributes,
            )
            stack.physical[logical] = subscription["SubscriptionArn"]

    if events is not None:
        for logical, props in _resources_of(template, "AWS::Events::EventBus").items():
            name = stack.resolve(props["Name"])
            stack.physical[logical] = name
            stack.arns[logical] = events.create_event_bus(Name=name)["EventBusArn"]
        for logical, props in _resources_of(template, "AWS::Events::Rule").items():
            bus = stack.resolve(props.get("EventBusName", "default"))
            name = f"{stack_name}-{logical}"
            stack.arns[logical] = events.put_rule(
                Name=name,
                EventBusName=bus,
                EventPattern=json.dumps(stack.resolve(props["EventPattern"])),
                State=props.get("State", "ENABLED"),
            )["RuleArn"]
            stack.physical[logical] = name
            targets = [stack.resolve(target) for target in props["Targets"]]
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)

    if secrets is not None:
        for logical, props in _resources_of(template, "AWS::SecretsManager::Secret").items():
            arn = secrets.create_secret(Name=f"{stack_name}-{logical}", SecretString=props.get("SecretString", "{}"))
            stack.physical[logical] = arn["ARN"]  # Ref of a secret is its ARN
            stack.arns[logical] = arn["ARN"]

    for logical, props in _resources_of(template, "AWS::S3::Bucket").items():
        name = stack.resolve(props.get("BucketName", {"Fn::Sub": f"{stack_name}-{logical.lower()}"}))
        s3.create_bucket(Bucket=name, **_location(region))
        stack.physical[logical] = name
        stack.arns[logical] = f"arn:aws:s3:::{name}"
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        notifications = props.get("NotificationConfiguration", {})
        queue_configs = [
            {
                "QueueArn": stack.resolve(config["Queue"]),
                "Events": [config["Event"]],
                "Filter": {"Key": {"FilterRules": config["Filter"]["S3Key"]["Rules"]}},
            }
            for config in notifications.get("QueueConfigurations", [])
        ]
        if queue_configs:
            s3.put_bucket_notification_configuration(
                Bucket=name,
                NotificationConfiguration={"QueueConfigurations": queue_configs},  # type: ignore[typeddict-item]
            )
    return stack


def _location(region: str) -> dict[str, Any]:
    return {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
