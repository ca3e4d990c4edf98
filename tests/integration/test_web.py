"""The web app's serving and deployment: the local stack serves the built app at its root with the security headers,
the development sign-in and the API reference; `avatar deploy web` uploads it with its config from the stack's
outputs (on moto); the template puts it in a private bucket behind CloudFront with managed login for the client."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from avatar_dev.deploy.web import IMMUTABLE, REVALIDATE, publish_web
from avatar_dev.local.http_api import TokenIssuer, local_http_api, template_cors, template_routes
from avatar_dev.local.stack import IntakeStack
from avatar_dev.local.template import load_template
from avatar_dev.web import DIST, local_web_app, merged_openapi

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
S3 = "http://127.0.0.1:4566"


@pytest.fixture
def site(intake_stack: IntakeStack) -> Iterator[tuple[str, TokenIssuer]]:
    issuer = TokenIssuer()
    web = local_web_app(aws_endpoint=S3, max_photo_bytes=15 * 1024 * 1024)
    with local_http_api(template_routes(TEMPLATE), issuer, cors=template_cors(TEMPLATE), web=web) as url:
        yield url, issuer


def test_the_app_is_served_at_the_root_with_its_security_headers_and_config(site: tuple[str, TokenIssuer]) -> None:
    url, _ = site
    page = requests.get(f"{url}/", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<script type="module"' in page.text and "https://" not in page.text.replace("https://www.w3.org", "")
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and f"connect-src 'self' {S3}" in csp
    assert page.headers["X-Frame-Options"] == "DENY" and "max-age=" in page.headers["Strict-Transport-Security"]
    assert requests.head(f"{url}/", timeout=30).content == b""
    config = requests.get(f"{url}/config.json", timeout=30).json()
    assert config["auth"] == {"kind": "local", "signInUrl": "local/sign-in"} and config["apiUrl"] == ""
    assert config["maxPhotoBytes"] == 15 * 1024 * 1024
    for asset in (DIST / "assets").iterdir():  # every built asset is served, with its type
        answer = requests.get(f"{url}/assets/{asset.name}", timeout=30)
        assert answer.status_code == 200 and answer.content == asset.read_bytes()


def test_nothing_outside_the_app_is_served_and_other_methods_are_refused(site: tuple[str, TokenIssuer]) -> None:
    url, _ = site
    host = url.removeprefix("http://")
    paths = ("/../../pyproject.toml", "/%2e%2e/%2e%2e/pyproject.toml", "/.gitignore", "/assets/../../../Makefile")
    for path in (*paths, "/nope", "//etc/passwd"):
        connection = http.client.HTTPConnection(host, timeout=30)  # sends the path as written (no dot removal)
        connection.request("GET", path)
        answer = connection.getresponse()
        assert answer.status == 404 and json.loads(answer.read())["error"]["code"] == "not_found", path
        connection.close()
    assert requests.put(f"{url}/", data=b"x", timeout=30).status_code == 405
    assert requests.get(f"{url}/v1/photos", timeout=30).status_code == 401  # the API is still the API


def test_the_development_sign_in_gives_a_token_for_a_valid_user_name_only(site: tuple[str, TokenIssuer]) -> None:
    url, issuer = site
    for body in ({"user_name": "ann\n"}, {"user_name": "../x"}, {"user_name": ""}, {"user": "ann"}, [1], "x"):
        answer = requests.post(f"{url}/local/sign-in", json=body, timeout=30)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request", body
    answer = requests.post(f"{url}/local/sign-in", json={"user_name": "ann"}, timeout=30)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    claims = issuer.verify(answer.json()["access_token"])
    assert claims is not None and claims["sub"] == "ann" and claims["exp"] > claims["iat"]
    photos = requests.get(f"{url}/v1/photos", headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
    assert photos.status_code == 200


def test_the_api_reference_page_shows_every_route_of_the_three_apis(site: tuple[str, TokenIssuer]) -> None:
    url, _ = site
    page = requests.get(f"{url}/api/", timeout=30)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text and "//" not in page.text.split("<body>")[1]
    document = requests.get(f"{url}/api/openapi.json", timeout=30).json()
    routes = {(r.method.lower(), r.route_key.split(" ", 1)[1]) for r in template_routes(TEMPLATE)}
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert routes == documented
    assert document["components"]["securitySchemes"]["cognito"]["scheme"] == "bearer"
    assert requests.get(f"{url}/api/swagger-ui-bundle.js", timeout=30).status_code == 200


@mock_aws
def test_deploy_web_uploads_the_app_with_the_stacks_config_and_invalidates_the_distribution() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    cloudfront = boto3.client("cloudfront", region_name="us-east-1")
    s3.create_bucket(Bucket="web")
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "test",
            "Comment": "",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "app", "DomainName": "web.s3.amazonaws.com"}]},
            "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "redirect-to-https"},
        }
    )["Distribution"]
    outputs = {
        "ApiUrl": "https://abc.execute-api.us-east-1.amazonaws.com",
        "AuthDomain": "https://avatar-x.auth.us-east-1.amazoncognito.com",
        "UserPoolClientId": "client123",
        "WebUrl": "https://d111.cloudfront.net",
        "WebBucketName": "web",
        "WebDistributionId": distribution["Id"],
    }
    logged: list[str] = []

    count = publish_web(s3, cloudfront, outputs, log=logged.append)

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="web")["Contents"]}
    assert count == len(keys) and {"index.html", "config.json", "api/index.html", "api/openapi.json"} <= keys
    config = json.loads(s3.get_object(Bucket="web", Key="config.json")["Body"].read())
    assert config["apiUrl"] == outputs["ApiUrl"]
    assert config["auth"] == {
        "kind": "cognito",
        "domain": outputs["AuthDomain"],
        "clientId": "client123",
        "redirectUri": "https://d111.cloudfront.net/",
        "scopes": ["openid", "email", "aws.cognito.signin.user.admin"],
    }
    index = s3.head_object(Bucket="web", Key="index.html")
    assert (index["ContentType"], index["CacheControl"]) == ("text/html; charset=utf-8", REVALIDATE)
    asset = next(k for k in keys if k.startswith("assets/") and k.endswith(".js"))
    assert s3.head_object(Bucket="web", Key=asset)["CacheControl"] == IMMUTABLE
    assert logged[-2] == "s3://web/index.html"  # the page that names the assets goes last
    openapi = json.loads(s3.get_object(Bucket="web", Key="api/openapi.json")["Body"].read())
    assert openapi["servers"] == [{"url": outputs["ApiUrl"]}] and openapi["paths"] == merged_openapi()["paths"]
    invalidations = cloudfront.list_invalidations(DistributionId=distribution["Id"])["InvalidationList"]
    assert invalidations["Quantity"] == 1

    with pytest.raises(KeyError, match="WebBucketName"):
        publish_web(s3, cloudfront, {k: v for k, v in outputs.items() if k != "WebBucketName"}, log=logged.append)


def test_the_template_serves_the_app_privately_through_cloudfront_with_security_headers() -> None:
    bucket = RESOURCES["WebBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    statements = RESOURCES["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    assert allowed == [next(s for s in statements if s["Sid"] == "CloudFrontReadsTheApp")]
    assert allowed[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allowed[0]["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in allowed[0]["Condition"]["StringEquals"]
    config = RESOURCES["WebDistribution"]["Properties"]["DistributionConfig"]
    origin = config["Origins"][0]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {"Ref": "WebSecurityHeaders"}
    headers = RESOURCES["WebSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    for directive in ("frame-ancestors 'none'", "script-src 'self'", "https://*.execute-api.${AWS::Region}"):
        assert directive in csp
    assert "amazoncognito.com" in csp and headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000


def test_the_web_client_uses_managed_login_with_the_code_flow_back_to_the_app() -> None:
    client = RESOURCES["UserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False and client["AllowedOAuthFlows"] == ["code"]
    assert "aws.cognito.signin.user.admin" in client["AllowedOAuthScopes"]  # the scope the API's authorizer requires
    authorizer = RESOURCES["HttpApi"]["Properties"]["Auth"]["Authorizers"]["CognitoJwt"]
    assert set(authorizer["AuthorizationScopes"]) <= set(client["AllowedOAuthScopes"])
    assert client["CallbackURLs"] == [{"Fn::Sub": "https://${WebDistribution.DomainName}/"}]
    assert RESOURCES["UserPoolDomain"]["Properties"]["ManagedLoginVersion"] == 2
    outputs = TEMPLATE["Outputs"]
    assert {"AuthDomain", "WebUrl", "WebBucketName", "WebDistributionId", "UserPoolClientId", "ApiUrl"} <= set(outputs)


def test_the_first_page_is_measured_from_what_index_html_names(capsys: pytest.CaptureFixture[str]) -> None:
    from avatar_dev.bench.web import first_page_files, run

    names = [path.name for path in first_page_files()]
    assert names[0] == "index.html" and any(n.endswith(".js") for n in names) and any(n.endswith(".css") for n in names)
    assert run(as_json=True) == 0
    figures = json.loads(capsys.readouterr().out)
    assert 0 < figures["first_page_gzip_kb"] < figures["first_page_kb"] and figures["within_goal"]
