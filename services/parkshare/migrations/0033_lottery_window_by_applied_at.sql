-- The lottery's window is judged at the instant an application records, not at the database's
-- clock (issue 20: one clock for every "now"). The service writes `applied_at` from its clock,
-- the same instant it checked the window with, so the two layers cannot disagree; a row written
-- past the service that names no time still gets `clock_timestamp()` and is judged by it. The
-- invariant the published record needs holds either way: no application is dated outside its
-- lottery's window.

create or replace function lottery_window_open() returns trigger language plpgsql as $$
declare
    window_open boolean;
begin
    select new.applied_at >= applications_open_at and new.applied_at < applications_close_at
      into window_open from lotteries where id = new.lottery_id;
    if not coalesce(window_open, false) then
        raise exception 'the lottery % takes no applications at %', new.lottery_id, new.applied_at
            using errcode = 'P0002';
    end if;
    return new;
end
$$;
