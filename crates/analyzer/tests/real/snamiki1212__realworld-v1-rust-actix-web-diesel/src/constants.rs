pub const AUTHORIZATION: &str = "Authorization";

pub const BIND: &str = "0.0.0.0:8080";

pub mod env_key {
    pub const DATABASE_URL: &str = "DATABASE_URL";
    pub const FRONTEND_ORIGIN: &str = "FRONTEND_ORIGIN";
}
