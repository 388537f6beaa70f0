-- Owners price their shared space as a percentage of the compound's filed tariff: never above
-- it (rule 4), down to free. 100 is the compound default.
alter table shared_spaces add column price_pct smallint not null default 100 check (price_pct between 0 and 100);
-- The price a booking was made at: what the visitor agreed to, whatever the owner sets later.
alter table bookings add column price_pct smallint not null default 100 check (price_pct between 0 and 100);
