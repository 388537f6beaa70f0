-- Issue 21 item 5: one shared space, one car. Walk-ins racing for the shared spaces of a full
-- lot were placed on a space whose earlier walk-in had outstayed its hold but was still
-- parked there. The gate now checks for such a car under the space's lock; this index makes
-- Postgres refuse a second open stay on one space whatever the code does.
--
-- Stays that already share a space keep their bookings and bills; all but the earliest lose
-- the space (they are flagged so that staff can look at them), or the index could not be built.
with ranked as (
    select id, row_number() over (partition by space_id order by entered_at nulls last, id) as nth
      from sessions
     where status = 'open' and space_id is not null
)
update sessions s
   set space_id = null, anomaly = coalesce(s.anomaly, 'shared_space_double_parked'), updated_at = now()
  from ranked r
 where r.id = s.id and r.nth > 1;

create unique index sessions_one_car_per_space on sessions (space_id)
    where status = 'open' and space_id is not null;
