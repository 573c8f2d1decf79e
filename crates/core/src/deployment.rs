//! The deployment state machine (seed 002) and its seed-000 view.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a deployment is in its life. Transitions are recorded as events; see [`DeploymentStatus::can_move_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    Queued,
    Analyzing,
    Building,
    Provisioning,
    Deploying,
    Healthy,
    Exposed,
    Failed,
    RollingBack,
    RolledBack,
    Cancelled,
    Destroyed,
}

/// The four states of seed 000's `/platform/deployments` view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeedDeploymentStatus {
    Queued,
    Running,
    Success,
    Failed,
}

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 12] = [
        Self::Queued,
        Self::Analyzing,
        Self::Building,
        Self::Provisioning,
        Self::Deploying,
        Self::Healthy,
        Self::Exposed,
        Self::Failed,
        Self::RollingBack,
        Self::RolledBack,
        Self::Cancelled,
        Self::Destroyed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Analyzing => "ANALYZING",
            Self::Building => "BUILDING",
            Self::Provisioning => "PROVISIONING",
            Self::Deploying => "DEPLOYING",
            Self::Healthy => "HEALTHY",
            Self::Exposed => "EXPOSED",
            Self::Failed => "FAILED",
            Self::RollingBack => "ROLLING_BACK",
            Self::RolledBack => "ROLLED_BACK",
            Self::Cancelled => "CANCELLED",
            Self::Destroyed => "DESTROYED",
        }
    }

    /// A deployment in a terminal state does no more work.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Exposed | Self::Failed | Self::RolledBack | Self::Cancelled | Self::Destroyed
        )
    }

    /// The seed-000 view. `DESTROYED` keeps the view the deployment had before it was destroyed,
    /// so the caller passes the status it had then.
    pub fn seed_view(self, before_destroyed: Option<DeploymentStatus>) -> SeedDeploymentStatus {
        match self {
            Self::Queued => SeedDeploymentStatus::Queued,
            Self::Analyzing
            | Self::Building
            | Self::Provisioning
            | Self::Deploying
            | Self::Healthy
            | Self::RollingBack => SeedDeploymentStatus::Running,
            Self::Exposed => SeedDeploymentStatus::Success,
            Self::Failed | Self::RolledBack | Self::Cancelled => SeedDeploymentStatus::Failed,
            Self::Destroyed => match before_destroyed {
                Some(prev) if prev != Self::Destroyed => prev.seed_view(None),
                _ => SeedDeploymentStatus::Success,
            },
        }
    }

    /// The transitions the orchestrator may make.
    pub fn can_move_to(self, next: DeploymentStatus) -> bool {
        use DeploymentStatus::*;
        match (self, next) {
            (Queued, Analyzing)
            | (Analyzing, Building)
            | (Building, Provisioning)
            | (Provisioning, Deploying)
            | (Deploying, Healthy)
            | (Healthy, Exposed) => true,
            (s, Failed) if !s.is_terminal() && s != RollingBack => true,
            (Failed, RollingBack) => true,
            (RollingBack, RolledBack) | (RollingBack, Failed) => true,
            (s, Cancelled) if !s.is_terminal() => true,
            (s, Destroyed) => s != Destroyed,
            _ => false,
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeploymentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown deployment status {s:?}; expected one of {}",
                    Self::ALL.map(|s| s.as_str()).join(", ")
                )
            })
    }
}

impl SeedDeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_view_mapping() {
        use DeploymentStatus::*;
        use SeedDeploymentStatus as S;
        let table = [
            (Queued, S::Queued),
            (Analyzing, S::Running),
            (Building, S::Running),
            (Provisioning, S::Running),
            (Deploying, S::Running),
            (Healthy, S::Running),
            (RollingBack, S::Running),
            (Exposed, S::Success),
            (Failed, S::Failed),
            (RolledBack, S::Failed),
            (Cancelled, S::Failed),
        ];
        for (s, v) in table {
            assert_eq!(s.seed_view(None), v, "{s}");
        }
        assert_eq!(Destroyed.seed_view(Some(Failed)), S::Failed);
        assert_eq!(Destroyed.seed_view(Some(Exposed)), S::Success);
    }

    #[test]
    fn parse_round_trip() {
        for s in DeploymentStatus::ALL {
            assert_eq!(s.as_str().parse::<DeploymentStatus>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("nope".parse::<DeploymentStatus>().is_err());
    }

    #[test]
    fn transitions() {
        use DeploymentStatus::*;
        assert!(Queued.can_move_to(Analyzing));
        assert!(!Queued.can_move_to(Exposed));
        assert!(Building.can_move_to(Failed));
        assert!(Failed.can_move_to(RollingBack));
        assert!(!Exposed.can_move_to(Cancelled));
        assert!(Exposed.can_move_to(Destroyed));
    }
}
