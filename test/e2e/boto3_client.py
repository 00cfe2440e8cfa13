"""boto3 (Debian python3-boto3) as a workload holding placeholder keys.

Driven by pythonClients.e2e.spec.ts. argv[1] picks how it reaches Envoy:
  virtual, path  proxy mode: HTTPS_PROXY and AWS_CA_BUNDLE in the environment, region eu-west-1,
                 that S3 addressing style; STS too.
  endpoint       endpoint mode: AWS_ENDPOINT_URL_S3 (Envoy's endpoint_in, plain HTTP), region
                 us-east-1, path-style. Newer boto3 reads AWS_ENDPOINT_URL_S3 itself; Debian 12's
                 boto3 1.26 ignores it, so the script passes it as endpoint_url, as its users must.
Prints one JSON line of results.
"""
import io
import json
import os
import sys

import boto3
from botocore.config import Config

mode = sys.argv[1] if len(sys.argv) > 1 else "virtual"
endpoint = mode == "endpoint"
if endpoint:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"],
                      config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
else:
    s3 = boto3.client("s3", region_name="eu-west-1", config=Config(retries={"max_attempts": 1}, s3={"addressing_style": mode}))
out = {"endpoint_url": s3.meta.endpoint_url}

key = "boto3/key with space+plus/ünï.txt"
s3.put_object(Bucket="py-bucket", Key=key, Body=b"from boto3", ContentType="text/plain", Metadata={"origin": "boto3"})
# A flexible checksum: over HTTPS botocore sends it as an aws-chunked trailer, over HTTP as a header.
s3.put_object(Bucket="py-bucket", Key="boto3/crc32.txt", Body=b"with a CRC32", ChecksumAlgorithm="CRC32")
got = s3.get_object(Bucket="py-bucket", Key=key)
out["get"] = got["Body"].read().decode()
out["metadata"] = got["Metadata"]
listed = s3.list_objects_v2(Bucket="py-bucket", Prefix="boto3/")
out["listed"] = [o["Key"] for o in listed.get("Contents", [])]

# A multipart upload through the transfer manager (8 MiB threshold, 2 parts).
data = bytes(range(256)) * (40 * 1024)  # 10 MiB
s3.upload_fileobj(io.BytesIO(data), "py-bucket", "boto3/multipart.bin",
                  Config=boto3.s3.transfer.TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=2))
head = s3.head_object(Bucket="py-bucket", Key="boto3/multipart.bin")
out["multipart_size"] = head["ContentLength"]
s3.delete_object(Bucket="py-bucket", Key="boto3/multipart.bin")
s3.delete_object(Bucket="py-bucket", Key="boto3/crc32.txt")

if not endpoint:  # endpoint_in serves S3 only
    sts = boto3.client("sts", region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    out["account"] = sts.get_caller_identity()["Account"]
print(json.dumps(out))
