SELECT
  dt AS date,
  COUNT(*) AS total_events,
  COUNT(DISTINCT user_id) AS unique_users,
  AVG(session_duration_ms) / 1000.0 AS avg_session_duration_seconds
FROM ${table}
WHERE dt >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
GROUP BY dt
ORDER BY date DESC
