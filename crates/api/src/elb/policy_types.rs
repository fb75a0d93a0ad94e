//! `DescribeLoadBalancerPolicyTypes`: the policy types the service layer knows.

use fulcrum_control::policy_types::{find, PolicyType, POLICY_TYPES};

use super::{answer, done};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    let asked = call.params.strings("PolicyTypeNames")?;
    let types: Vec<&PolicyType> = if asked.is_empty() {
        POLICY_TYPES.iter().collect()
    } else {
        asked
            .iter()
            .map(|n| {
                find(n).ok_or_else(|| {
                    ApiError::from(fulcrum_model::ModelError::PolicyTypeNotFound(n.to_string()))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let mut x = answer("DescribeLoadBalancerPolicyTypes");
    x.list("PolicyTypeDescriptions", types, |x, t| {
        x.text("PolicyTypeName", t.name)
            .text("Description", t.description)
            .list("PolicyAttributeTypeDescriptions", t.attributes, |x, a| {
                x.text("AttributeName", a.0)
                    .text("AttributeType", a.1)
                    .text("Cardinality", a.2);
                if !a.3.is_empty() {
                    x.text("DefaultValue", a.3);
                }
                if !a.4.is_empty() {
                    x.text("Description", a.4);
                }
            });
    });
    Ok(done(x, "DescribeLoadBalancerPolicyTypes"))
}
