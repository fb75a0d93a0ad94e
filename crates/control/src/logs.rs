//! A load balancer's access log as it is written: its recent lines, and a tail that follows it
//! (while one follows, the load balancer makes records even with its log files off).

use fulcrum_model::ModelError;
use fulcrum_telemetry::access_log::Tail;

use crate::load_balancers::lb_name;
use crate::{Control, ControlError};

impl Control {
    /// The last `lines` lines of `name`'s access log, oldest first.
    pub fn recent_log(&self, name: &str, lines: usize) -> Result<String, ControlError> {
        let name = lb_name(name)?;
        self.data_plane
            .log_target(name.as_str())
            .ok_or_else(|| ModelError::LoadBalancerNotFound(name.to_string()))?;
        Ok(self.access_logs.recent(name.as_str(), lines))
    }

    /// Follows `name`'s access log from now on, with its last `lines` lines.
    pub fn follow_log(&self, name: &str, lines: usize) -> Result<Tail, ControlError> {
        let name = lb_name(name)?;
        let target = self
            .data_plane
            .log_target(name.as_str())
            .ok_or_else(|| ModelError::LoadBalancerNotFound(name.to_string()))?;
        Ok(self
            .access_logs
            .follow(name.as_str(), lines, target.follow()))
    }
}
