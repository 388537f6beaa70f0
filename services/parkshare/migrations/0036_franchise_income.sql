-- The property firm's own parking income where it holds the charging franchise for the
-- developer's unsold spaces (or a visitor pool on the developer's land) gets an account of its
-- own (issue 26, outside tester's F12). Booked before as `management_income`, it showed on the
-- disclosure page as common income and again as the firm's management cost; management income
-- is now only the firm's share of common revenue. Earlier postings stay as they were booked.
alter table ledger_accounts drop constraint ledger_accounts_kind_check;
alter table ledger_accounts add constraint ledger_accounts_kind_check check (kind in (
    'provider_clearing', 'cash_on_hand', 'owner_payable', 'common_revenue', 'management_income',
    'franchise_income', 'platform_fee_income', 'developer_payable', 'maintenance_fund',
    'refunds_payable', 'provider_fees'));
