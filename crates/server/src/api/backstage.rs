//! The services' catalog files in one answer, for `slipway catalog export`: a page of services,
//! each with its `catalog-info.yaml` (Backstage entities) and `score.yaml` as stored.

use super::{PageOf, Paging};
use crate::error::{ApiResult, Problem};
use crate::extract::ValidQuery;
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_core::{ArtifactScope, ServiceQuery};
use slipway_store::StoreError;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/catalog", get(service_catalogs))
}

/// One service's catalog files, as generated.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceCatalog {
    #[schema(example = "payments")]
    pub service: String,
    #[schema(example = "core-platform")]
    pub team: String,
    /// `catalog-info.yaml`: the Backstage Component and its team's System (multi-document YAML);
    /// `null` when the service's template makes none.
    pub catalog_info: Option<String>,
    /// `score.yaml`: the Score workload; `null` when the service's template makes none.
    pub score: Option<String>,
}

/// Services sorted by name, each with its Backstage `catalog-info.yaml` and Score `score.yaml`
/// (one request for what would otherwise take two per service).
#[utoipa::path(get, path = "/api/v1/catalog", tag = "artifacts", params(Paging), responses(
    (status = 200, body = PageOf<ServiceCatalog>),
    (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn service_catalogs(
    State(state): State<AppState>,
    ValidQuery(paging): ValidQuery<Paging>,
) -> ApiResult<Json<PageOf<ServiceCatalog>>> {
    let (limit, offset) = paging.resolve()?;
    let page = state
        .store
        .list_services(&ServiceQuery {
            limit,
            offset,
            ..ServiceQuery::default()
        })
        .await?;
    let file = |service: String, path: &'static str| {
        let store = state.store.clone();
        async move {
            match store
                .get_artifact(&service, ArtifactScope::Service, path)
                .await
            {
                Ok(a) => Ok(Some(String::from_utf8_lossy(&a.content).into_owned())),
                // Deleted since the list was read, or a template without the file.
                Err(StoreError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
    };
    let mut items = Vec::with_capacity(page.items.len());
    for s in &page.items {
        items.push(ServiceCatalog {
            service: s.name.clone(),
            team: s.team.clone(),
            catalog_info: file(s.name.clone(), "catalog-info.yaml").await?,
            score: file(s.name.clone(), "score.yaml").await?,
        });
    }
    Ok(Json(PageOf {
        items,
        total: page.total,
        limit,
        offset,
    }))
}
