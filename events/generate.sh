#!/usr/bin/env bash
# Regenerates events/*.json: one real REST API (v1) proxy event per function, as
# `sam local generate-event apigateway aws-proxy` emits it, with the route's resource,
# path parameters, headers and body set. `sam local invoke -e events/<function>.json` uses them;
# the tests load them and change only the parts a test is about.
set -euo pipefail
cd "$(dirname "$0")"
export SAM_CLI_TELEMETRY=0
id=0192f3a0-7b4c-7d2e-9a1b-3c4d5e6f7a8b
cid=0192f3a1-1c2d-7e3f-8a4b-5c6d7e8f9a0b
gen() { # name method resource path body content-type query
  sam local generate-event apigateway aws-proxy --method "$2" --resource "$3" --path "${4#/}" \
    --body "" --querystringparameters "${7:-}" | python3 -c '
import json, sys
name, method, resource, path, body, ctype, query, pid, cid = sys.argv[1:10]
e = json.load(sys.stdin)
e["resource"] = resource
e["path"] = path
e["requestContext"]["path"] = "/prod" + path
e["requestContext"]["resourcePath"] = resource
jid = "0192f3a2-4d5e-7f60-8a1b-2c3d4e5f6a7b"
params = {k: v for k, v in (("profile_id", pid), ("contact_id", cid), ("job_id", jid)) if "{%s}" % k in resource}
e["pathParameters"] = params or None
q = dict(p.split("=", 1) for p in query.split("&")) if query else None
e["queryStringParameters"] = q
e["multiValueQueryStringParameters"] = {k: [v] for k, v in q.items()} if q else None
e["body"] = body or None
e["isBase64Encoded"] = False
# What the authorizer vouched for (shared::auth::Caller::of reads it): API Gateway flattens
# the authorizer context into requestContext.authorizer beside its principalId.
e["requestContext"]["authorizer"] = {
    "principalId": "user-1", "tenant_id": "tenant-a", "principal_id": "user-1",
    "scopes": "profiles.create profiles.read profiles.lists profiles.update profiles.delete",
    "integrationLatency": 12,
}
if ctype:
    e["headers"]["Content-Type"] = ctype
    e["multiValueHeaders"]["Content-Type"] = [ctype]
json.dump(e, open(name + ".json", "w"), indent=2)
open(name + ".json", "a").write("\n")
' "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" "$id" "$cid"
}
gen create-profile POST /profiles /profiles \
  '{"first_name":"Mary","middle_name":"Jane","last_name":"Smith","title":"CTO","company":"Acme Corp","email":"Mary@Example.COM","country_numeric_code":"840","tags":["blue","green"],"contacts":[{"key":"email","value":"mary@example.com"},{"key":"phone","value":"+1 415 555 2671"}]}' \
  application/json
gen get-profile GET '/profiles/{profile_id}' "/profiles/$id" '' ''
gen list-profiles GET /profiles /profiles '' '' 'limit=10'
gen list-own-profiles GET /profiles/all /profiles/all '' '' 'limit=10'
gen get-primary-profile GET /profiles/me /profiles/me '' ''
gen update-profile PATCH '/profiles/{profile_id}' "/profiles/$id" \
  '{"title":"CEO","middle_name":null,"custom_properties":{"clicker":"1"}}' application/merge-patch+json
gen replace-profile PUT '/profiles/{profile_id}' "/profiles/$id" \
  '{"name":"Acme Corp","website_url":"https://acme.com","industry":["Fintech","B2B SaaS"]}' application/json
gen delete-profile DELETE '/profiles/{profile_id}' "/profiles/$id" '' ''
gen list-contacts GET '/profiles/{profile_id}/contacts' "/profiles/$id/contacts" '' ''
gen create-contact POST '/profiles/{profile_id}/contacts' "/profiles/$id/contacts" \
  '{"key":"phone","value":"+1 (415) 555-2671","external_id":"crm-42"}' application/json
gen get-contact GET '/profiles/{profile_id}/contacts/{contact_id}' "/profiles/$id/contacts/$cid" '' ''
gen update-contact PATCH '/profiles/{profile_id}/contacts/{contact_id}' "/profiles/$id/contacts/$cid" \
  '{"value":"+44 20 7946 0958"}' application/merge-patch+json
gen delete-contact DELETE '/profiles/{profile_id}/contacts/{contact_id}' "/profiles/$id/contacts/$cid" '' ''

# The authorizer's own event: API Gateway's REQUEST authorizer event for GET /profiles/{id},
# presenting a well-formed API key that no table holds (paste a real one to get an Allow).
sam local generate-event apigateway request-authorizer --stage prod --method GET \
  --resource "profiles/$id" | python3 -c '
import json, sys
pid = sys.argv[1]
e = json.load(sys.stdin)
path = "/profiles/" + pid
e["resource"] = "/profiles/{profile_id}"
e["path"] = path
e["pathParameters"] = {"profile_id": pid}
e["queryStringParameters"] = {}
e["multiValueQueryStringParameters"] = {}
e["stageVariables"] = {}
ctx = e["requestContext"]
ctx.update(path="/prod" + path, resourcePath="/profiles/{profile_id}",
           requestId="c6af9ac6-7b61-11e6-9a41-93e8deadbeef")
ctx["identity"].update(sourceIp="203.0.113.7", userAgent="curl/8.5.0", apiKey=None, clientCert=None)
headers = {"Accept": "*/*", "CloudFront-Viewer-Country": "US", "CloudFront-Forwarded-Proto": "https",
           "CloudFront-Is-Tablet-Viewer": "false", "CloudFront-Is-Mobile-Viewer": "false",
           "User-Agent": "curl/8.5.0", "Host": "abcdef123.execute-api.us-east-1.amazonaws.com",
           "Authorization": "Bearer prof_" + "A" * 43}
e["headers"] = headers
e["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
e["methodArn"] = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET" + path
json.dump(e, open("authorizer.json", "w"), indent=2)
open("authorizer.json", "a").write("\n")
' "$id"
gen create-photo-upload POST '/profiles/{profile_id}/photo' "/profiles/$id/photo" \
  '{"content_type":"image/png"}' application/json
# bulk-jobs serves four routes: its event is POST /imports; get-import is its GET.
gen bulk-jobs POST /imports /imports '{"mode":"upsert"}' application/json
gen get-import GET '/imports/{job_id}' /imports/0192f3a2-4d5e-7f60-8a1b-2c3d4e5f6a7b '' ''
# The CORS preflight's event: a browser's OPTIONS before a PATCH, from an allowed origin's
# page; no credential, so no authorizer ran (cors-preflight, made when CorsAllowedOrigins is set).
gen cors-preflight OPTIONS '/profiles/{profile_id}' "/profiles/$id" '' ''
python3 - <<'PY'
import json
e = json.load(open("cors-preflight.json"))
del e["requestContext"]["authorizer"]
for name, value in {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PATCH",
                    "Access-Control-Request-Headers": "authorization,content-type,if-match"}.items():
    e["headers"][name] = value
    e["multiValueHeaders"][name] = [value]
json.dump(e, open("cors-preflight.json", "w"), indent=2)
open("cors-preflight.json", "a").write("\n")
PY
# process-photo's event: S3's ObjectCreated notification of one upload (the local runner
# sends the same shape; the key is URL-encoded as S3 sends it).
sam local generate-event s3 put --region us-east-1 \
  --bucket profiles-local-123456789012-us-east-1-photos \
  --key "uploads/tenant-a/$id/0192f3a2-0000-7000-8000-000000000001" > process-photo.json
# publish-events' event is not generated: events/publish-events.json is a DynamoDB stream
# batch in the shape `sam local generate-event dynamodb update` prints (NEW_AND_OLD_IMAGES),
# one profile's INSERT, MODIFY (renamed) and REMOVE, its images the item the API wrote, read
# back from the local runner's table. Regenerate it by hand if the item's shape changes.
