"""`avatar deploy ...`: build and upload what the SageMaker endpoints load (see the README's deploy guide)."""

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
    from avatar.deploy.images import image_uris

    for name, uri in image_uris(args.region, instance_type=args.instance_type).items():
        print(f"{name}={uri}")
    return 0


def _build(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar.deploy.artifacts import build

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
    from avatar.deploy.artifacts import TRAINING_CODE
    from avatar.deploy.publish import upload_training_code

    artifact = _built(args, parser, TRAINING_CODE, "`make gpu-artifacts`")
    key = upload_training_code(_s3(), artifact, bucket=args.bucket, prefix=args.prefix)
    print(f"ArtifactBucket={args.bucket} TrainingCodeKey={key}")
    return 0


def _upload_base(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from avatar.deploy.publish import upload_base_model
    from avatar.diffusion.base_model import resolve_base_model

    source = Path(args.base_model)
    if not source.is_dir():  # a hub id (stabilityai/stable-diffusion-2-1-base) where this machine has access
        source = resolve_base_model(args.base_model, cache_dir=Path(args.cache_dir)).folder
    uploaded, skipped = upload_base_model(_s3(), source, bucket=args.bucket, prefix=args.prefix)
    print(f"{uploaded} files uploaded, {skipped} already there")
    print(f"ArtifactBucket={args.bucket} BaseModelPrefix={args.prefix.strip('/')}/")
    return 0


def _publish(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import boto3

    from avatar.deploy.artifacts import SETUP_ARCHIVE
    from avatar.deploy.publish import publish_setup_model, stack_outputs

    artifact = _built(args, parser, SETUP_ARCHIVE, "`make gpu-env gpu-artifacts`")
    bucket = stack_outputs(boto3.client("cloudformation"), args.stack)["PhotoBucketName"]
    key = publish_setup_model(_s3(), artifact, bucket=bucket)
    print(f"s3://{bucket}/{key}")
    return 0


def add_deploy_commands(commands: Any) -> None:
    """Register `avatar deploy images | build | upload | upload-base | publish`."""
    deploy = commands.add_parser("deploy", help="build and upload what the SageMaker endpoints load")
    steps = deploy.add_subparsers(dest="step", required=True)

    images = steps.add_parser("images", help="print the LMI and Triton image URIs of a region (template parameters)")
    images.add_argument("--region", required=True)
    images.add_argument("--instance-type", default="ml.g5.2xlarge", help="GPU or CPU flavour of the Triton image")
    images.set_defaults(run=_images)

    build = steps.add_parser("build", help="the LMI code artifact and, with the environment, the setup model")
    build.add_argument("--out", default=str(DEFAULT_OUT))
    build.add_argument("--execution-env", default=str(DEFAULT_ENV), help="the conda-pack archive (make gpu-env)")
    build.set_defaults(run=_build)

    upload = steps.add_parser("upload", help="upload the LMI code artifact (before sam deploy)")
    upload.add_argument("--bucket", required=True, help="the ArtifactBucket parameter")
    upload.add_argument("--prefix", default="avatar")
    upload.add_argument("--out", default=str(DEFAULT_OUT))
    upload.set_defaults(run=_upload)

    base = steps.add_parser("upload-base", help="upload the base model as a diffusers folder (before sam deploy)")
    base.add_argument("--bucket", required=True, help="the ArtifactBucket parameter")
    base.add_argument("--base-model", required=True, help="a diffusers folder, or a hub id this machine can fetch")
    base.add_argument("--prefix", default=DEFAULT_BASE_PREFIX, help="the BaseModelPrefix parameter")
    base.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "avatar"))
    base.set_defaults(run=_upload_base)

    publish = steps.add_parser("publish", help="put the setup model under the stack's models/ prefix (after deploy)")
    publish.add_argument("--stack", default="avatar")
    publish.add_argument("--out", default=str(DEFAULT_OUT))
    publish.set_defaults(run=_publish)
