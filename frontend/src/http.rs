//! The public API (docs/design.md, "Public API"), the storefront page, OpenAPI, health and metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use utoipa::OpenApi;

use api::ErrorBody;
use api::catalog::{Product, ProductView};
use api::client::ClientError;
use api::orders::{Data, Order, PlaceOrder, PlaceOrderResponse};
use servicekit::{ApiJson, HttpError};

use crate::Frontend;
use crate::cache::Lookup;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 16 * 1024;

const STOREFRONT: &str = include_str!("../static/index.html");

/// The OpenAPI document of the public API, generated from the handlers and types.
#[derive(OpenApi)]
#[openapi(
    info(title = "ToyStore public API"),
    paths(list_products, get_product, place_order, get_order),
    components(schemas(ProductView, PlaceOrder, PlaceOrderResponse, Order, ErrorBody))
)]
pub struct ApiDoc;

/// Builds the frontend's router.
pub fn router(frontend: Arc<Frontend>) -> Router {
    Router::new()
        .route("/", get(storefront))
        .route("/products", get(list_products))
        .route("/products/{name}", get(get_product))
        .route("/orders", post(place_order))
        .route("/orders/{number}", get(get_order))
        .route("/events", get(crate::live::events))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(servicekit::not_found)
        .method_not_allowed_fallback(servicekit::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(
            BODY_LIMIT,
            servicekit::reject_oversized,
        ))
        .layer(middleware::from_fn_with_state(
            frontend.clone(),
            count_requests,
        ))
        .layer(middleware::from_fn_with_state(
            frontend.clone(),
            close_while_draining,
        ))
        .with_state(frontend)
}

async fn count_requests(
    State(frontend): State<Arc<Frontend>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let resp = next.run(req).await;
    frontend.metrics.request(&route, resp.status().as_u16());
    resp
}

/// While draining, closes each connection after its answer, so the client's next request goes
/// through the load balancer again, to a frontend that is not shutting down.
async fn close_while_draining(
    State(frontend): State<Arc<Frontend>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = next.run(req).await;
    if frontend.draining.load(Ordering::Relaxed) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

async fn storefront() -> Html<&'static str> {
    Html(STOREFRONT)
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Maps an upstream failure to the client's answer: the upstream's own 4xx passes through,
/// anything that means "not reachable now" is a 503.
fn upstream_error(e: ClientError) -> HttpError {
    match e {
        ClientError::Api { status, error } if status.is_client_error() => {
            HttpError::new(status, error.message)
        }
        other => HttpError::unavailable(other.to_string()),
    }
}

/// Lists the catalog.
#[utoipa::path(get, path = "/products",
    responses((status = 200, body = Data<Vec<ProductView>>), (status = 503, body = ErrorBody)))]
async fn list_products(
    State(frontend): State<Arc<Frontend>>,
) -> Result<Json<Data<Vec<ProductView>>>, HttpError> {
    let start = Instant::now();
    let min_version = frontend.cache.min_version_of_all();
    let products = frontend.catalogs.products(min_version).await;
    frontend
        .metrics
        .upstream("catalog", "list", start.elapsed().as_secs_f64());
    let products = products.map_err(upstream_error)?;
    Ok(Json(Data {
        data: products.iter().map(ProductView::from).collect(),
    }))
}

/// One toy with its price and stock (cached; kept correct by the catalog's change feed).
/// The `ETag` header carries the catalog's change version of the toy: reads through one
/// frontend never return a lower one than a read that completed before them.
#[utoipa::path(get, path = "/products/{name}",
    params(("name" = String, Path, description = "Toy name")),
    responses((status = 200, body = Data<ProductView>,
            headers(("ETag" = String, description = "The toy's change version, quoted"))),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn get_product(
    State(frontend): State<Arc<Frontend>>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, HttpError> {
    let lookup = frontend.cache.lookup(&name);
    let ticket = match lookup {
        Lookup::Hit(p) => {
            frontend.metrics.cache_lookup("hit");
            return Ok(product_answer(&p));
        }
        Lookup::Miss(ticket) => {
            frontend.metrics.cache_lookup("miss");
            Some(ticket)
        }
        Lookup::Bypass => {
            frontend.metrics.cache_lookup("bypass");
            None
        }
    };
    let start = Instant::now();
    let min_version = frontend.cache.min_version(&name);
    let product = frontend.catalogs.product(&name, min_version).await;
    frontend
        .metrics
        .upstream("catalog", "get", start.elapsed().as_secs_f64());
    let product = product.map_err(upstream_error)?;
    let answer = product_answer(&product);
    frontend.cache.insert(product, ticket);
    Ok(answer)
}

/// `{"data": {"name", "price", "quantity"}}` with the version as the `ETag`.
fn product_answer(p: &Product) -> impl IntoResponse + use<> {
    let etag = HeaderValue::from_str(&format!("\"{}\"", p.version))
        .expect("a quoted number is a valid header value");
    (
        [(header::ETAG, etag)],
        Json(Data {
            data: ProductView::from(p),
        }),
    )
}

/// Places an order. Retrying with the same `Idempotency-Key` never creates a second order.
#[utoipa::path(post, path = "/orders", request_body = PlaceOrder,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Makes retries safe; one is generated when absent",
        pattern = "^[A-Za-z0-9._:-]{1,128}$")),
    responses((status = 200, body = Data<PlaceOrderResponse>),
        (status = 400, description = "Malformed body, quantity outside 1..10000, or a malformed Idempotency-Key", body = ErrorBody),
        (status = 404, description = "Unknown toy", body = ErrorBody),
        (status = 409, description = "Not enough stock; stock unchanged", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Body not sent as application/json", body = ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for another toy or quantity; nothing changed", body = ErrorBody),
        (status = 503, description = "No outcome before the deadline (no order leader reachable); retry with the same Idempotency-Key", body = ErrorBody)))]
async fn place_order(
    State(frontend): State<Arc<Frontend>>,
    headers: HeaderMap,
    ApiJson(order): ApiJson<PlaceOrder>,
) -> Result<Json<Data<PlaceOrderResponse>>, HttpError> {
    let bad = |m: String| HttpError::new(StatusCode::BAD_REQUEST, m);
    order.validate().map_err(bad)?;
    let key = servicekit::idempotency_key(&headers)?;
    let start = Instant::now();
    let result = frontend.orders.place_order(&key, &order).await;
    frontend
        .metrics
        .upstream("orders", "place", start.elapsed().as_secs_f64());
    // Whatever the outcome, stock may have changed: the next read must not come from the
    // cache, and after a confirmed purchase it must show at least the purchase's stock.
    let version = result.as_ref().ok().map(|placed| placed.version);
    frontend.cache.purchased(&order.name, version);
    let placed = result.map_err(upstream_error)?;
    Ok(Json(Data {
        data: PlaceOrderResponse {
            order_number: placed.order_number,
        },
    }))
}

/// Looks up a confirmed order.
#[utoipa::path(get, path = "/orders/{number}",
    params(("number" = u64, Path, description = "Order number")),
    responses((status = 200, body = Data<Order>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn get_order(
    State(frontend): State<Arc<Frontend>>,
    Path(number): Path<String>,
) -> Result<Json<Data<Order>>, HttpError> {
    let number = servicekit::order_number(&number)?;
    let start = Instant::now();
    let order = frontend.orders.get_order(number).await;
    frontend
        .metrics
        .upstream("orders", "get", start.elapsed().as_secs_f64());
    Ok(Json(Data {
        data: order.map_err(upstream_error)?,
    }))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "pid": std::process::id()}))
}

/// Ready while an order leader is known and the store's toys are defined, and not draining
/// before shutdown. The catalog is not asked: purchases go on without it (queries answer 503
/// then), so a catalog outage must not take every frontend out of its load balancer.
async fn readyz(
    State(frontend): State<Arc<Frontend>>,
) -> Result<Json<serde_json::Value>, HttpError> {
    if frontend.draining.load(Ordering::Relaxed) {
        return Err(HttpError::unavailable("shutting down"));
    }
    let Some(leader) = frontend.orders.leader() else {
        return Err(HttpError::unavailable("no order leader known"));
    };
    if !frontend.orders.inventory_defined() {
        return Err(HttpError::unavailable(
            "the store's toys are not defined yet (the catalog defines them at first start)",
        ));
    }
    Ok(Json(json!({
        "status": "ready",
        "order_leader": leader,
        "catalog_feed": frontend.cache.feed_connected(),
    })))
}

async fn metrics(State(frontend): State<Arc<Frontend>>) -> impl IntoResponse {
    let body = frontend
        .metrics
        .render(frontend.cache.feed_connected(), frontend.cache.len());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
