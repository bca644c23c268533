//! The Profiles API's HTTP edge: what turns an API Gateway request into a call of the core
//! (`shared`) and its outcome into an answer. Reading requests and writing answers (`http`),
//! the caller the authorizer vouched for (`caller`), the endpoints (`handlers`), the Lambda
//! authorizer (`authorizer`), CORS (`cors`), the function wiring (`lambda`), and `ApiError`
//! with every `From<…Error> for ApiError` (`error`): the one place a failure becomes a status.

pub mod authorizer;
pub mod caller;
pub mod cors;
pub mod error;
pub mod handlers;
pub mod http;
pub mod lambda;
