"""The stack that template.yaml describes, as CloudFormation (here moto) creates it."""

from __future__ import annotations

import boto3

from embedded.deploy import STACK_NAME, DeployedStack


def test_outputs_name_every_resource_users_need(aws: boto3.session.Session, stack: DeployedStack) -> None:
    [described] = aws.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    assert set(outputs) >= {"ApiUrl", "ProfilesTableName", "EventsStreamName", "DataBucketName", "SegmentEventBusName"}
    assert outputs["ApiUrl"].startswith("https://") and outputs["ApiUrl"].endswith("/dev")
    assert outputs["SegmentEventBusName"] == f"{STACK_NAME}-segments"


def test_the_table_has_its_index_and_time_to_live(aws: boto3.session.Session, stack: DeployedStack) -> None:
    dynamodb = aws.client("dynamodb")
    table = dynamodb.describe_table(TableName=stack.outputs["ProfilesTableName"])["Table"]
    indexes = sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"])
    assert indexes == ["byEmail", "byPhone", "byRfm", "bySegment", "byTier"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=stack.outputs["ProfilesTableName"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")


def test_the_stream_function_is_mapped_as_the_template_says(aws: boto3.session.Session, stack: DeployedStack) -> None:
    [mapping] = aws.client("lambda").list_event_source_mappings(FunctionName=stack.functions["StreamFunction"])[
        "EventSourceMappings"
    ]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == 3
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"].endswith(
        ":" + stack.resources["DeadLetterQueue"].rsplit("/", 1)[1]
    )


def test_the_api_routes_are_the_templates(aws: boto3.session.Session, stack: DeployedStack) -> None:
    apigateway = aws.client("apigateway")
    resources = apigateway.get_resources(restApiId=stack.resources["Api"])["items"]
    routes = {
        (r["path"], m): apigateway.get_method(restApiId=stack.resources["Api"], resourceId=r["id"], httpMethod=m)[
            "apiKeyRequired"
        ]
        for r in resources
        for m in r.get("resourceMethods", {})
    }
    assert routes == {
        ("/v1/events", "POST"): False,  # signed, not keyed
        **{
            (f"/v1/{call}", verb): False  # write keys; OPTIONS: the browsers' preflights (CORS per source)
            for call in ("batch", "track", "identify", "page", "screen", "group", "alias", *"tipsgab")
            for verb in ("POST", "OPTIONS")
        },
        **{(path, verb): False for path in ("/beacon/v1/batch",) for verb in ("POST", "OPTIONS")},
        **{
            (path, verb): False  # the browser SDKs' settings, and in-page personalization (a write key)
            for path in ("/sourceConfig", "/v1/projects/{writeKey}/settings", "/v1/web/personalization")
            for verb in ("GET", "OPTIONS")
        },
        ("/v1/customers", "GET"): True,  # by email or phone, through their keyed hashes
        ("/v1/customers/{customerId}", "GET"): True,
        ("/v1/customers/{customerId}/personalization", "GET"): True,
        ("/v1/customers/{customerId}/recommendations", "GET"): True,
        ("/v1/experiments/{experimentId}/results", "GET"): True,
        ("/v1/experiments", "GET"): True,
        ("/v1/models/segments/{version}/report", "GET"): True,
        ("/console", "GET"): False,
        ("/console/{file}", "GET"): False,
        ("/v1/customers/{customerId}/consent", "PUT"): True,
        ("/v1/customers/{customerId}", "DELETE"): True,
        ("/v1/customers/{customerId}/export", "GET"): True,
        ("/v1/customers/{customerId}/audit", "GET"): True,
        ("/v1/segments", "GET"): True,
        ("/v1/segments/{segmentId}", "GET"): True,
        ("/v1/segments/{segmentId}/customers", "GET"): True,
        ("/v1/segments/{segmentId}/members", "GET"): True,  # the console's member table
        ("/v1/segments/{segmentId}/trend", "GET"): True,
        ("/v1/customers/{customerId}/timeline", "GET"): True,
        ("/v1/rules", "GET"): True,  # the rule builder: the rules in force, a preview, saving (the config function)
        ("/v1/rules/preview", "POST"): True,
        ("/v1/rules", "PUT"): True,
        ("/v1/models/value", "GET"): True,
        ("/v1/customers/{customerId}/explain", "GET"): True,
        ("/v1/models/segments", "GET"): True,
        ("/v1/models/segments/{version}", "GET"): True,
    }


def test_functions_get_resolved_resource_names(aws: boto3.session.Session, stack: DeployedStack) -> None:
    config = aws.client("lambda").get_function_configuration(FunctionName=stack.functions["StreamFunction"])
    variables = config["Environment"]["Variables"]
    assert variables["PROFILES_TABLE"] == stack.outputs["ProfilesTableName"]
    assert variables["DEAD_LETTER_QUEUE_URL"] == stack.outputs["DeadLetterQueueUrl"]
    assert config["Runtime"] == "python3.11"


def test_the_contact_indexes_find_customers_by_the_keyed_hash_never_the_address(
    aws: boto3.session.Session, stack: DeployedStack
) -> None:
    """A profile whose email and phone are stored hashed is found through byEmail/byPhone by that
    hash; the item holds no address."""
    from datetime import UTC, datetime

    from audience.adapters.dynamodb import DynamoProfileRepository
    from audience.domain.privacy import pseudonymised
    from audience.domain.profile import Profile, Stamped

    table = stack.outputs["ProfilesTableName"]
    profiles, now = DynamoProfileRepository(table), datetime.now(UTC)
    hashed = pseudonymised({"email": "grace@example.com", "phone": "+1 555 0100"}, "a-pepper")
    profiles.save(Profile(customer_id="grace", known=True, traits={k: Stamped(v, now) for k, v in hashed.items()}))
    profiles.save(Profile(customer_id="no-contact", known=True))

    assert profiles.with_contact("email", hashed["email"]) == ["grace"]
    assert profiles.with_contact("phone", hashed["phone"]) == ["grace"]
    assert profiles.with_contact("email", "grace@example.com") == []  # the address itself finds nothing
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    assert "grace@example.com" not in str(items)
    assert profiles.get("grace") is not None and profiles.get("grace").traits["email"].v == hashed["email"]  # type: ignore[union-attr]
