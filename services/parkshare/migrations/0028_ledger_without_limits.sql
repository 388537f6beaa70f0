-- No internal limit may make a firm's books unbookable or a compound's uncloseable (issue 21,
-- item 4): an account's running balance, a posting and an owner's period credit were
-- numeric(14, 2), so once a firm's provider clearing or a compound's maintenance fund passed
-- ¥999,999,999,999.99 every payment of the firm answered 500 and the close failed for ever.
-- One amount of input stays bounded at ¥10,000,000 (parkshare_domain::money::MONEY_YUAN_MAX);
-- sums of them are bounded only by numeric(20, 2), out of reach of any real ledger.
alter table ledger_accounts alter column balance type numeric(20, 2);
alter table postings alter column amount type numeric(20, 2);
alter table owner_statements alter column credited type numeric(20, 2);
