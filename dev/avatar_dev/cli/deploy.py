"""`avatar deploy ...`: build and upload what the SageMaker endpoints load (see docs/deploy.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("build/gpu")
DEFAULT_ENV = DEFAULT_OUT / "avatar_env.tar.gz"
DEFAULT_BASE_PREFIX = "avatar/base-models/stable-diffusion-2-1-base/"


def _s3() -> Any:
    import boto3

    return boto3.client("s3")


def _built(args: argparse.Namespace, parser: argparse.ArgumentParser, name: str, how: str) -> Path:
    """An artifact `avatar deploy build` wrote to --out, or a usage error that says how to make it."""
    artifact = Path(args.out) / name
    if not artifact.is_file():
        parser.error(f"{artifact} does not exist: run {how} first")
    return artifact


def _images(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar_dev.deploy.images import image_uris

    for name, uri in image_uris(args.region, instance_type=args.instance_type).items():
        print(f"{name}={uri}")
    return 0


def _build(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar_dev.deploy.artifacts import build

    environment = Path(args.execution_env)
    present = environment.is_file()
    if not present:
        if args.execution_env != str(DEFAULT_ENV):
            parser.error(f"{environment} does not exist")
        print(f"no {environment} (make gpu-env builds it): building the training code only")
    for name, path in build(Path(args.out), execution_env=environment if present else None).items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _upload(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar_dev.deploy.artifacts import TRAINING_CODE
    from avatar_dev.deploy.publish import upload_training_code

    artifact = _built(args, parser, TRAINING_CODE, "`make gpu-artifacts`")
    key = upload_training_code(_s3(), artifact, bucket=args.bucket, prefix=args.prefix)
    print(f"ArtifactBucket={args.bucket} TrainingCodeKey={key}")
    return 0


def _upload_base(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar.diffusion.base_checkpoints import resolve_base_model
    from avatar_dev.deploy.publish import upload_base_model

    source = Path(args.base_model)
    if not source.is_dir():  # a hub id (stabilityai/stable-diffusion-2-1-base) where this machine has access
        source = resolve_base_model(args.base_model, cache_dir=Path(args.cache_dir)).folder
    uploaded, skipped = upload_base_model(_s3(), source, bucket=args.bucket, prefix=args.prefix)
    print(f"{uploaded} files uploaded, {skipped} already there")
    print(f"ArtifactBucket={args.bucket} BaseModelPrefix={args.prefix.strip('/')}/")
    return 0


def _publish(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import boto3

    from avatar_dev.deploy.artifacts import SETUP_ARCHIVE
    from avatar_dev.deploy.publish import publish_setup_model, stack_outputs

    artifact = _built(args, parser, SETUP_ARCHIVE, "`make gpu-env gpu-artifacts`")
    bucket = stack_outputs(boto3.client("cloudformation"), args.stack)["PhotoBucketName"]
    key = publish_setup_model(_s3(), artifact, bucket=bucket)
    print(f"s3://{bucket}/{key}")
    return 0


def _web(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import boto3

    from avatar_dev.deploy.publish import stack_outputs
    from avatar_dev.deploy.web import publish_web
    from avatar_dev.web import WebAppMissing

    outputs = stack_outputs(boto3.client("cloudformation"), args.stack)
    try:
        count = publish_web(_s3(), boto3.client("cloudfront"), outputs)
    except (WebAppMissing, KeyError) as problem:
        parser.error(str(problem))
    print(f"{count} files uploaded")
    return 0


def add_commands(commands: Any) -> None:
    """`avatar deploy images | build | upload | upload-base | publish | web`."""
    from avatar_dev.cli import HelpFormatter, add_command

    deploy = add_command(
        commands,
        "deploy",
        help="build and upload what the SageMaker endpoints load, and the web app",
        example="avatar deploy images --region eu-west-1",
        notes="The steps, in order, with the SAM commands between them: docs/deploy.md.",
    )
    steps = deploy.add_subparsers(dest="step", required=True, metavar="STEP")

    def step(name: str, help: str, example: str) -> Any:
        return steps.add_parser(
            name,
            help=help,
            description=help[:1].upper() + help[1:] + ".",
            epilog=f"example:\n  {example}",
            formatter_class=HelpFormatter,
        )

    images = step(
        "images",
        "print the LMI and Triton image URIs of a region (template parameters)",
        "avatar deploy images --region us-east-1",
    )
    images.add_argument("--region", required=True, help="the AWS region of the stack")
    images.add_argument("--instance-type", default="ml.g5.2xlarge", help="GPU or CPU flavour of the Triton image")
    images.set_defaults(run=_images)

    build = step("build", "the LMI code artifact and, with the environment, the setup model", "avatar deploy build")
    build.add_argument("--out", default=str(DEFAULT_OUT), help="where the artifacts are written")
    build.add_argument("--execution-env", default=str(DEFAULT_ENV), help="the conda-pack archive (make gpu-env)")
    build.set_defaults(run=_build)

    upload = step(
        "upload", "upload the LMI code artifact (before sam deploy)", "avatar deploy upload --bucket my-artifacts"
    )
    upload.add_argument("--bucket", required=True, help="the ArtifactBucket parameter")
    upload.add_argument("--prefix", default="avatar", help="key prefix in the bucket")
    upload.add_argument("--out", default=str(DEFAULT_OUT), help="where `avatar deploy build` wrote the artifacts")
    upload.set_defaults(run=_upload)

    base = step(
        "upload-base",
        "upload the base model as a diffusers folder (before sam deploy)",
        "avatar deploy upload-base --bucket my-artifacts --base-model ./stable-diffusion-2-1-base",
    )
    base.add_argument("--bucket", required=True, help="the ArtifactBucket parameter")
    base.add_argument("--base-model", required=True, help="a diffusers folder, or a hub id this machine can fetch")
    base.add_argument("--prefix", default=DEFAULT_BASE_PREFIX, help="the BaseModelPrefix parameter")
    base.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "avatar"), help="where a hub download goes")
    base.set_defaults(run=_upload_base)

    publish = step(
        "publish",
        "put the setup model under the stack's models/ prefix (after deploy)",
        "avatar deploy publish --stack avatar",
    )
    publish.add_argument("--stack", default="avatar", help="the CloudFormation stack's name")
    publish.add_argument("--out", default=str(DEFAULT_OUT), help="where `avatar deploy build` wrote the artifacts")
    publish.set_defaults(run=_publish)

    web = step(
        "web",
        "upload the web app (make web) with its config from the stack's outputs (after deploy)",
        "avatar deploy web --stack avatar",
    )
    web.add_argument("--stack", default="avatar", help="the CloudFormation stack's name")
    web.set_defaults(run=_web)
