//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "dbuild scheduler", description = "Hands out RPM builds to workers by critical path; state in SQLite."),
    paths(
        super::worker::register,
        super::worker::lease,
        super::worker::heartbeat,
        super::worker::reserve,
        super::worker::report,
        super::worker::leave,
        super::read::summary,
        super::read::packages,
        super::read::package,
        super::logs::log,
        super::page::index,
        super::read::graph,
        super::read::workers,
        super::read::rpms,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        super::ops::openapi_json,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
