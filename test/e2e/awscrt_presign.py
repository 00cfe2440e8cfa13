"""Presigns one S3 GET with SigV4A (AWS4-ECDSA-P256-SHA256) by aws-c-auth, through python3-awscrt
(Debian's, which the AWS CLI v2 package depends on), and prints the presigned path and query.

argv: host path region_set expires_seconds; the placeholder key pair comes from the environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). awscrt signs HTTP requests in headers or in the query
only (no chunk signatures), so it is used here for presigned URLs.
"""
import os
import sys

from awscrt.auth import (
    AwsCredentialsProvider,
    AwsSignatureType,
    AwsSignedBodyValue,
    AwsSigningAlgorithm,
    AwsSigningConfig,
    aws_sign_request,
)
from awscrt.http import HttpHeaders, HttpRequest


def main() -> None:
    host, path, region_set, expires = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    provider = AwsCredentialsProvider.new_static(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    config = AwsSigningConfig(
        algorithm=AwsSigningAlgorithm.V4_ASYMMETRIC,
        signature_type=AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS,
        credentials_provider=provider,
        region=region_set,
        service="s3",
        use_double_uri_encode=False,
        should_normalize_uri_path=False,
        signed_body_value=AwsSignedBodyValue.UNSIGNED_PAYLOAD,
        expiration_in_seconds=expires,
    )
    request = HttpRequest("GET", path, HttpHeaders([("host", host)]))
    signed = aws_sign_request(request, config).result(timeout=30)
    print(signed.path)


if __name__ == "__main__":
    main()
