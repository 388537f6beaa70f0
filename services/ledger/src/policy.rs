//! A compound's revenue policy: who gets what from a paid stay. Policies are versioned with an
//! effective date by the service and apply forward only.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who is credited for stays on a developer's unsold spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsoldBeneficiary {
    Developer,
    /// The property firm holds the charging franchise for them.
    PropertyFirm,
}

/// Whose land the lot's visitor pool stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolLand {
    /// Common parts owned by all owners (the usual case): income is common revenue.
    Common,
    /// Spaces the developer still owns.
    Developer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevenuePolicy {
    /// The platform's service fee on a shared private space, in percent of what the driver paid.
    #[serde(with = "rust_decimal::serde::str")]
    pub platform_fee_pct: Decimal,
    /// The share of common revenue the owners' contract lets the property firm keep as
    /// management cost, in percent (0 if the contract grants none).
    #[serde(with = "rust_decimal::serde::str")]
    pub management_share_pct: Decimal,
    pub unsold_to: UnsoldBeneficiary,
    pub visitor_pool_land: PoolLand,
    /// At a period close, at least this share of the common revenue tops up the maintenance
    /// fund (rule 6: mainly); the rest is credited to the owners by floor area. 100 when the
    /// owners' assembly has decided nothing else.
    #[serde(default = "all", with = "rust_decimal::serde::str")]
    pub maintenance_fund_pct: Decimal,
}

fn all() -> Decimal {
    Decimal::ONE_HUNDRED
}

impl Default for RevenuePolicy {
    /// Until a compound records its own: a 10 % platform fee, nothing kept from common
    /// revenue, unsold spaces credited to the developer, the visitor pool on common land, all
    /// common revenue to the maintenance fund at close.
    fn default() -> RevenuePolicy {
        RevenuePolicy {
            platform_fee_pct: Decimal::TEN,
            management_share_pct: Decimal::ZERO,
            unsold_to: UnsoldBeneficiary::Developer,
            visitor_pool_land: PoolLand::Common,
            maintenance_fund_pct: Decimal::ONE_HUNDRED,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0} must be between 0 and 100 percent with at most two decimals")]
    Percent(&'static str),
}

impl RevenuePolicy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (name, pct) in [
            ("platform_fee_pct", self.platform_fee_pct),
            ("management_share_pct", self.management_share_pct),
            ("maintenance_fund_pct", self.maintenance_fund_pct),
        ] {
            if pct < Decimal::ZERO || pct > Decimal::ONE_HUNDRED || pct.normalize().scale() > 2 {
                return Err(PolicyError::Percent(name));
            }
        }
        Ok(())
    }
}

/// The kind of space a stay used, which decides whose revenue it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpaceUse {
    /// An owner's private space shared during their idle hours.
    SharedPrivate { owner_id: Uuid },
    /// A common-area space.
    Common,
    /// The lot's visitor pool (common land unless the policy says otherwise).
    VisitorPool,
    /// A developer's unsold space.
    DeveloperUnsold,
}
