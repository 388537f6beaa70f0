//! Accounts. An account is a kind and a holder: "owner 张伟's payable balance", "阳光花园's
//! common revenue". The holder's meaning depends on the kind (see [`AccountKind::holder`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Money a payment provider collected for a property firm and will settle to it.
    ProviderClearing,
    /// Cash taken at a compound's staffed booths, not yet banked.
    CashOnHand,
    /// What is owed to an owner for their shared private space.
    OwnerPayable,
    /// A compound's common revenue (公共收益), kept separate (单独建账); it belongs to all owners.
    CommonRevenue,
    /// The share of common revenue the owners' contract lets the property firm keep as cost.
    ManagementIncome,
    /// The property firm's own parking income where it holds the charging franchise for the
    /// developer's unsold spaces (or a visitor pool on the developer's land): not common
    /// revenue, and not a share of it.
    FranchiseIncome,
    /// The platform's service fee on shared private spaces, per property firm it was earned from
    /// (one account per firm, so that no single balance row serialises every firm's payments).
    PlatformFeeIncome,
    /// What is owed to the developer for its unsold spaces in a compound.
    DeveloperPayable,
    /// Common revenue allocated to the maintenance fund (维修资金), to be transferred.
    MaintenanceFund,
    /// Money received that must go back to the driver (e.g. paid after the intent expired).
    RefundsPayable,
    /// What payment providers keep as their fee, per property firm (an expense).
    ProviderFees,
}

impl AccountKind {
    pub const ALL: [AccountKind; 11] = [
        AccountKind::ProviderClearing,
        AccountKind::CashOnHand,
        AccountKind::OwnerPayable,
        AccountKind::CommonRevenue,
        AccountKind::ManagementIncome,
        AccountKind::FranchiseIncome,
        AccountKind::PlatformFeeIncome,
        AccountKind::DeveloperPayable,
        AccountKind::MaintenanceFund,
        AccountKind::RefundsPayable,
        AccountKind::ProviderFees,
    ];

    pub fn code(self) -> &'static str {
        match self {
            AccountKind::ProviderClearing => "provider_clearing",
            AccountKind::CashOnHand => "cash_on_hand",
            AccountKind::OwnerPayable => "owner_payable",
            AccountKind::CommonRevenue => "common_revenue",
            AccountKind::ManagementIncome => "management_income",
            AccountKind::FranchiseIncome => "franchise_income",
            AccountKind::PlatformFeeIncome => "platform_fee_income",
            AccountKind::DeveloperPayable => "developer_payable",
            AccountKind::MaintenanceFund => "maintenance_fund",
            AccountKind::RefundsPayable => "refunds_payable",
            AccountKind::ProviderFees => "provider_fees",
        }
    }

    pub fn parse(code: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// What the holder id names for this kind of account.
    pub fn holder(self) -> &'static str {
        match self {
            AccountKind::OwnerPayable => "owner",
            AccountKind::CashOnHand
            | AccountKind::CommonRevenue
            | AccountKind::DeveloperPayable
            | AccountKind::MaintenanceFund => "compound",
            AccountKind::ProviderClearing
            | AccountKind::ManagementIncome
            | AccountKind::FranchiseIncome
            | AccountKind::PlatformFeeIncome
            | AccountKind::RefundsPayable
            | AccountKind::ProviderFees => "tenant",
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Account {
    pub kind: AccountKind,
    pub holder: Uuid,
}

impl Account {
    pub fn new(kind: AccountKind, holder: Uuid) -> Account {
        Account { kind, holder }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.holder)
    }
}
