//! What an unknown request gets: 405 with `Allow` when the path exists with other methods, 404
//! when it does not. The table comes from the OpenAPI document, so it lists exactly the routes
//! the server has.

use actix_web::dev::ResourceDef;
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::Error;

pub struct Routes(Vec<(ResourceDef, String)>);

impl Routes {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let mut routes = Vec::new();
        for (path, item) in &api.paths.paths {
            let mut methods: Vec<&str> = Vec::new();
            for (name, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ] {
                if op.is_some() {
                    methods.push(name);
                }
            }
            routes.push((ResourceDef::new(path.as_str()), methods.join(", ")));
        }
        Routes(routes)
    }

    /// The methods a path answers, if it is one of ours.
    pub fn allowed(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, allow)| allow.as_str())
    }
}

/// The default service: 405 or 404, as a problem document.
pub async fn fallback(req: HttpRequest, routes: web::Data<Routes>) -> Result<HttpResponse, Error> {
    Err(match routes.allowed(req.path()) {
        Some(allow) => Error::MethodNotAllowed {
            allow: allow.to_string(),
        },
        None => Error::NotFound,
    })
}
