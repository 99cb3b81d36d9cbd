"""A loopback S3 server for object-store tests: moto's, with credentials really checked.

The server starts with authentication on after the few unauthenticated calls that create an
IAM user, its access key and an allow-all policy; every request after that must be signed with
that key, so a wrong secret is refused as on AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3

_SETUP_CALLS = 4  # create_user, create_access_key, create_policy, attach_user_policy
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    key: str
    secret: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables that point any client at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
        }

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}"

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
        )

    def keys(self, prefix: str) -> list[str]:
        """Every object key under ``prefix`` in the bucket."""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_server(log: Path, bucket: str = "evalframes-test") -> Iterator[S3Server]:
    """Run a moto S3 server on 127.0.0.1 with one user allowed everything and one bucket."""
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(_SETUP_CALLS))
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_for_port(port, proc, log)
        server = _with_user(endpoint, bucket)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def _with_user(endpoint: str, bucket: str) -> S3Server:
    anyone = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, **anyone)
    iam.create_user(UserName="evalframes")
    key = iam.create_access_key(UserName="evalframes")["AccessKey"]
    statement = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    policy = iam.create_policy(
        PolicyName="everything",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    iam.attach_user_policy(UserName="evalframes", PolicyArn=policy["Policy"]["Arn"])
    server = S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"], bucket)
    server.client().create_bucket(Bucket=bucket)
    return server
