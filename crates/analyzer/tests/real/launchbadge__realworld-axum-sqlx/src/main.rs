#[tokio::main]
async fn main() -> anyhow::Result<()> {
    http::serve(config, db).await?;
}
