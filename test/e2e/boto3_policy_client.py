"""boto3 (Debian python3-boto3) as a workload under endpoint access rules, holding placeholder keys.

Driven by policyAccess.e2e.spec.ts and policyActions.e2e.spec.ts through Envoy's proxy listener
(HTTPS_PROXY and AWS_CA_BUNDLE in the environment). argv[1] picks the scenario:
  read-only  S3 bucket "datasets": get, head and list, then a put and a delete that must be refused;
  rules      S3 bucket "team": a key-prefix rule (put, get, list; another prefix and a denied
             sub-prefix refused), and a put to the audited bucket "trial";
  dynamodb   put_item and get_item, then delete_item that must be refused;
  sts        STS get_caller_identity, then assume_role that must be refused;
  whoami B   STS get_caller_identity's ARN, and a put to bucket B (the callers test).
Prints one JSON line: what succeeded, and for each refused call its HTTP status and error code.
"""
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

config = Config(retries={"max_attempts": 1})
out = {}


def refused(call):
    try:
        call()
    except ClientError as err:
        meta = err.response.get("ResponseMetadata", {})
        headers = meta.get("HTTPHeaders", {})
        return {"status": meta.get("HTTPStatusCode"), "code": err.response.get("Error", {}).get("Code"), "errortype": headers.get("x-amzn-errortype")}
    return "not refused"


if sys.argv[1] == "read-only":
    s3 = boto3.client("s3", region_name="eu-west-1", config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "virtual"}))
    out["get"] = s3.get_object(Bucket="datasets", Key="public/a.txt")["Body"].read().decode()
    out["head"] = s3.head_object(Bucket="datasets", Key="public/a.txt")["ContentLength"]
    out["listed"] = [o["Key"] for o in s3.list_objects_v2(Bucket="datasets").get("Contents", [])]
    out["put"] = refused(lambda: s3.put_object(Bucket="datasets", Key="public/boto3.txt", Body=b"no"))
    out["delete"] = refused(lambda: s3.delete_object(Bucket="datasets", Key="public/a.txt"))
elif sys.argv[1] == "rules":
    s3 = boto3.client("s3", region_name="eu-west-1", config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "virtual"}))
    s3.put_object(Bucket="team", Key="team-a/boto3 key+plus.txt", Body=b"from boto3")
    out["get"] = s3.get_object(Bucket="team", Key="team-a/boto3 key+plus.txt")["Body"].read().decode()
    out["listed"] = "team-a/boto3 key+plus.txt" in [o["Key"] for o in s3.list_objects_v2(Bucket="team").get("Contents", [])]
    out["other_prefix"] = refused(lambda: s3.put_object(Bucket="team", Key="team-b/boto3.txt", Body=b"no"))
    out["denied_prefix"] = refused(lambda: s3.get_object(Bucket="team", Key="team-a/secret/k"))
    s3.put_object(Bucket="trial", Key="boto3-audited", Body=b"audited")
    out["audited"] = True
elif sys.argv[1] == "dynamodb":
    ddb = boto3.client("dynamodb", region_name="eu-west-1", config=config)
    ddb.put_item(TableName="boto3-table", Item={"pk": {"S": "boto3"}})
    ddb.get_item(TableName="boto3-table", Key={"pk": {"S": "boto3"}})
    out["delete_item"] = refused(lambda: ddb.delete_item(TableName="boto3-table", Key={"pk": {"S": "boto3"}}))
elif sys.argv[1] == "whoami":
    sts = boto3.client("sts", region_name="us-east-1", config=config)
    out["arn"] = sts.get_caller_identity()["Arn"]
    s3 = boto3.client("s3", region_name="eu-west-1", config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "virtual"}))
    s3.put_object(Bucket=sys.argv[2], Key="boto3", Body=b"from boto3")
elif sys.argv[1] == "sts":
    sts = boto3.client("sts", region_name="us-east-1", config=config)
    out["user"] = sts.get_caller_identity()["UserId"]
    out["assume_role"] = refused(lambda: sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="session"))
print(json.dumps(out))
