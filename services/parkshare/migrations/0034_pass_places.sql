-- The places of a lot reserved for pool passes (issue 26, tester's F2): a pool pass takes a
-- reserved place, so the office sells no more passes than it reserves places for. 0 (the
-- default) sells none until the office says how many places it reserves.
alter table lots add column pass_places integer not null default 0
    check (pass_places between 0 and 10000);
