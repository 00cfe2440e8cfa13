"""boto3 (Debian python3-boto3) as a workload: placeholder keys, Envoy as HTTPS proxy.

Driven by pythonClients.e2e.spec.ts with HTTPS_PROXY, AWS_CA_BUNDLE and placeholder
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment. Prints one JSON line of results.
"""
import json
import sys

import boto3
from botocore.config import Config

cfg = Config(retries={"max_attempts": 1}, s3={"addressing_style": sys.argv[1] if len(sys.argv) > 1 else "virtual"})
s3 = boto3.client("s3", region_name="eu-west-1", config=cfg)
out = {}

key = "boto3/key with space+plus/ünï.txt"
s3.put_object(Bucket="py-bucket", Key=key, Body=b"from boto3", ContentType="text/plain", Metadata={"origin": "boto3"})
got = s3.get_object(Bucket="py-bucket", Key=key)
out["get"] = got["Body"].read().decode()
out["metadata"] = got["Metadata"]
listed = s3.list_objects_v2(Bucket="py-bucket", Prefix="boto3/")
out["listed"] = [o["Key"] for o in listed.get("Contents", [])]

# A multipart upload through the transfer manager (8 MiB threshold, 2 parts).
import io
data = bytes(range(256)) * (40 * 1024)  # 10 MiB
s3.upload_fileobj(io.BytesIO(data), "py-bucket", "boto3/multipart.bin",
                  Config=boto3.s3.transfer.TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=2))
head = s3.head_object(Bucket="py-bucket", Key="boto3/multipart.bin")
out["multipart_size"] = head["ContentLength"]

sts = boto3.client("sts", region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
out["account"] = sts.get_caller_identity()["Account"]
print(json.dumps(out))
