#!/usr/bin/env bash
# Regenerates events/*.json: one real REST API (v1) proxy event per function, as
# `sam local generate-event apigateway aws-proxy` emits it, with the route's resource,
# path parameters, headers and body set. `sam local invoke -e events/<function>.json` uses them;
# the tests load them and change only the parts a test is about.
set -euo pipefail
cd "$(dirname "$0")"
export SAM_CLI_TELEMETRY=0
id=0192f3a0-7b4c-7d2e-9a1b-3c4d5e6f7a8b
gen() { # name method resource path body content-type query
  sam local generate-event apigateway aws-proxy --method "$2" --resource "$3" --path "${4#/}" \
    --body "" --querystringparameters "${7:-}" | python3 -c '
import json, sys
name, method, resource, path, body, ctype, query, pid = sys.argv[1:9]
e = json.load(sys.stdin)
e["resource"] = resource
e["path"] = path
e["requestContext"]["path"] = "/prod" + path
e["requestContext"]["resourcePath"] = resource
e["pathParameters"] = {"profile_id": pid} if "{profile_id}" in resource else None
q = dict(p.split("=", 1) for p in query.split("&")) if query else None
e["queryStringParameters"] = q
e["multiValueQueryStringParameters"] = {k: [v] for k, v in q.items()} if q else None
e["body"] = body or None
e["isBase64Encoded"] = False
if ctype:
    e["headers"]["Content-Type"] = ctype
    e["multiValueHeaders"]["Content-Type"] = [ctype]
json.dump(e, open(name + ".json", "w"), indent=2)
open(name + ".json", "a").write("\n")
' "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" "$id"
}
gen create-profile POST /profiles /profiles \
  '{"first_name":"Mary","middle_name":"Jane","last_name":"Smith","title":"CTO","company":"Acme Corp","email":"Mary@Example.COM","country_numeric_code":"840","tags":["blue","green"],"contacts":[{"key":"email","value":"mary@example.com"},{"key":"phone","value":"+1 415 555 2671"}]}' \
  application/json
gen get-profile GET '/profiles/{profile_id}' "/profiles/$id" '' ''
gen list-profiles GET /profiles /profiles '' '' 'limit=10'
gen update-profile PATCH '/profiles/{profile_id}' "/profiles/$id" \
  '{"title":"CEO","middle_name":null,"custom_properties":{"clicker":"1"}}' application/merge-patch+json
gen replace-profile PUT '/profiles/{profile_id}' "/profiles/$id" \
  '{"name":"Acme Corp","website_url":"https://acme.com","industry":["Fintech","B2B SaaS"]}' application/json
gen delete-profile DELETE '/profiles/{profile_id}' "/profiles/$id" '' ''
