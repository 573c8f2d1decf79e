//! Static sites: an `index.html` and no server code.

use super::{Ctx, Detection, Detector, Outcome, STRENGTH_START};
use crate::error::AnalyzeError;
use crate::plan::{BuildPlan, Cite, Field, ResourcesHint};

pub(crate) struct Static;

impl Detector for Static {
    fn name(&self) -> &'static str {
        "static"
    }

    fn detect(&self, ctx: &Ctx) -> Result<Outcome, AnalyzeError> {
        let Some(dir) = [".", "public", "site", "www", "dist"]
            .into_iter()
            .find(|d| ctx.is_file(&crate::fs::join(d, "index.html")))
        else {
            return Ok(Outcome::NoMatch("no index.html".into()));
        };
        let index = crate::fs::join(dir, "index.html");
        let mut plan = BuildPlan::default();
        plan.set(
            Field::Language,
            Some("static".into()),
            Cite::file(ctx.path(&index), None, "index.html and no server code"),
        );
        plan.set(
            Field::StaticDir,
            Some(dir.into()),
            Cite::file(ctx.path(&index), None, "directory holding index.html"),
        );
        plan.set(
            Field::Start,
            None,
            Cite::rule("static site: served as files"),
        );
        plan.resources = Some(ResourcesHint {
            memory_mb: 32,
            cpu: 0.05,
        });
        plan.cite(
            "resources",
            "32 MiB",
            Cite::rule("files served by the platform"),
        );
        Ok(Outcome::Matched(Box::new(Detection {
            plan,
            strength: STRENGTH_START,
            manifest: ctx.path(&index),
        })))
    }
}
