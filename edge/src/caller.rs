//! Who is calling: the tenant, principal and scopes the authorizer vouched for, read from the
//! request context in one place ([`Caller::of`]), and the names of that context's members,
//! which the authorizer writes.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;
use shared::auth::{Scope, Scopes};
use shared::ids::{PrincipalId, TenantId};

use crate::error::ApiError;

/// The names of the authorizer context's members (API Gateway passes them to the function
/// in `requestContext.authorizer`).
pub const CONTEXT_TENANT: &str = "tenant_id";
pub const CONTEXT_PRINCIPAL: &str = "principal_id";
pub const CONTEXT_SCOPES: &str = "scopes";
/// Present when the caller is over its own rate limit (JWT callers): the seconds until its
/// next request fits. The function answers 429 with them (`Caller::of`).
pub const CONTEXT_RETRY_AFTER: &str = "retry_after";

/// The identity a request acts as, as the authorizer vouched for it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub principal: PrincipalId,
    pub scopes: Scopes,
}

impl Caller {
    /// The caller of a request, from the authorizer's context. API Gateway only invokes a
    /// function after the authorizer allowed the request, so a missing or malformed context
    /// means the function is reachable without the authorizer: a 401, never a default tenant.
    pub fn of(req: &Request) -> Result<Self, ApiError> {
        let Some(RequestContext::ApiGatewayV1(ctx)) = req.request_context_ref() else {
            return Err(ApiError::Unauthorized);
        };
        let fields = &ctx.authorizer.fields;
        // API Gateway passes context values on as strings; the runner as given.
        let retry_after = fields.get(CONTEXT_RETRY_AFTER).and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        });
        if let Some(seconds) = retry_after {
            return Err(ApiError::RateLimited {
                retry_after: u32::try_from(seconds).unwrap_or(u32::MAX),
            });
        }
        let text = |name: &str| fields.get(name).and_then(Value::as_str);
        let tenant = text(CONTEXT_TENANT).and_then(|t| TenantId::new(t).ok());
        let principal = text(CONTEXT_PRINCIPAL).and_then(|p| PrincipalId::new(p).ok());
        match (tenant, principal) {
            (Some(tenant), Some(principal)) => Ok(Self {
                tenant,
                principal,
                scopes: Scopes::from_names(text(CONTEXT_SCOPES).unwrap_or("").split(' ')),
            }),
            _ => {
                tracing::error!(
                    "request without an authorizer context: is the route's authorizer configured?"
                );
                Err(ApiError::Unauthorized)
            }
        }
    }

    /// The caller of a request that needs `scope`: 401 without a caller, 403 without the scope.
    pub fn with_scope(req: &Request, scope: Scope) -> Result<Self, ApiError> {
        let caller = Self::of(req)?;
        if caller.scopes.contains(scope) {
            Ok(caller)
        } else {
            Err(ApiError::Forbidden {
                code: "insufficient_scope",
                detail: format!("this route needs the scope {scope}"),
            })
        }
    }
}
