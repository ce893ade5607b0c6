with

activities as (
    select * from {{ ref('int_community_activities') }}
),

spaces as (
    select * from {{ ref('dim_community_spaces') }}
),

keywords as (
    select
        lower(trim(keyword)) as keyword,
        lower(trim(interest)) as interest
    from {{ ref('interest_keywords') }}
),

with_space_interest as (
    select
        activities.activity_id,
        activities.member_key,
        activities.brand_links,
        activities.text,
        cast(date_trunc('week', activities.occurred_at) as date) as week_start,
        coalesce(spaces.interest, 'general') as space_interest
    from activities
    left join spaces on activities.space_id = spaces.space_id
),

-- in a `general` space, the first keyword (the longest first) found in the text as whole words
keyword_hits as (
    select
        a.activity_id,
        arg_min(k.interest, -length(k.keyword)) as keyword_interest
    from with_space_interest as a
    inner join keywords as k
        on a.space_interest = 'general'
        and regexp_matches(lower(a.text), '\b' || regexp_escape(k.keyword) || '\b')
    group by a.activity_id
),

classified as (
    select
        a.week_start,
        coalesce(keyword_hits.keyword_interest, a.space_interest) as interest,
        a.member_key,
        a.brand_links
    from with_space_interest as a
    left join keyword_hits on a.activity_id = keyword_hits.activity_id
),

weekly as (
    select
        week_start,
        interest,
        count(*) as activities,
        count(distinct member_key) as active_members,
        coalesce(sum(len(brand_links)), 0)::bigint as brand_links_shared
    from classified
    group by week_start, interest
),

-- every week x interest from the first to the last week, so weeks without activity count as 0
week_spine as (
    select cast(unnest(generate_series(min(week_start), max(week_start), interval '7 days')) as date) as week_start
    from weekly
),

grid as (
    select week_spine.week_start, interests.interest
    from week_spine
    cross join (select distinct interest from weekly) as interests
),

filled as (
    select
        grid.week_start,
        grid.interest,
        coalesce(weekly.activities, 0) as activities,
        coalesce(weekly.active_members, 0) as active_members,
        coalesce(weekly.brand_links_shared, 0) as brand_links_shared
    from grid
    left join weekly
        on grid.week_start = weekly.week_start
        and grid.interest = weekly.interest
),

with_prior as (
    select
        *,
        avg(activities) over (
            partition by interest order by week_start rows between 4 preceding and 1 preceding
        ) as prior_4w_mean,
        count(*) over (
            partition by interest order by week_start rows between 4 preceding and 1 preceding
        ) as prior_weeks
    from filled
),

final as (
    select
        week_start,
        interest,
        activities,
        active_members,
        brand_links_shared,
        case when prior_weeks = 4 and prior_4w_mean > 0
            then activities / prior_4w_mean - 1
        end::double as growth_vs_prior_4w
    from with_prior
)

select * from final
