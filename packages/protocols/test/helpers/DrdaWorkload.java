// A JDBC workload for the live DRDA test, run against Derby's Network Server
// with Derby's own client driver (derbyclient.jar). Every statement here
// reaches derby.log; the test compares it with dbtap's records.
import java.math.BigDecimal;
import java.sql.*;

public class DrdaWorkload {
  static void expectError(Statement s, String sql) {
    try {
      s.execute(sql);
      throw new RuntimeException("expected an error from " + sql);
    } catch (SQLException e) {
      System.out.println("error " + e.getSQLState() + " " + sql);
    }
  }

  public static void main(String[] a) throws Exception {
    String base = "jdbc:derby://127.0.0.1:" + a[0] + "/";
    try (Connection c = DriverManager.getConnection(base + "appdb;create=true", "app", "apppw")) {
      Statement s = c.createStatement();
      s.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(60), qty SMALLINT, big BIGINT, price DECIMAL(12,3), "
          + "ratio DOUBLE, r REAL, code CHAR(4), born DATE, tm TIME, stamp TIMESTAMP, raw VARCHAR(16) FOR BIT DATA, flag BOOLEAN)");
      s.execute("CREATE TABLE docs (id INT PRIMARY KEY, body CLOB(1M), bin BLOB(1M))");
      // Parameters of every type, NULLs included.
      PreparedStatement p = c.prepareStatement("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      for (int i = 1; i <= 3; i++) {
        p.setInt(1, i);
        p.setString(2, "item " + i + " caf\u00e9 \u65e5\u672c");
        p.setShort(3, (short) (i * 7));
        p.setLong(4, 9000000000000000000L + i);
        p.setBigDecimal(5, new BigDecimal("-1234.5" + i));
        p.setDouble(6, 0.25 * i);
        p.setFloat(7, 1.5f);
        p.setString(8, "C" + i);
        p.setDate(9, Date.valueOf("2024-02-0" + i));
        p.setTime(10, Time.valueOf("12:34:5" + i));
        p.setTimestamp(11, Timestamp.valueOf("2024-02-03 04:05:06.789"));
        p.setBytes(12, new byte[] {1, 2, (byte) 0xfe, (byte) i});
        p.setBoolean(13, i % 2 == 0);
        p.executeUpdate();
      }
      p.setInt(1, 4);
      for (int k = 2; k <= 13; k++) p.setNull(k, p.getParameterMetaData().getParameterType(k));
      p.executeUpdate();
      // A batch.
      PreparedStatement b = c.prepareStatement("INSERT INTO items (id, name) VALUES (?, ?)");
      for (int i = 10; i < 15; i++) {
        b.setInt(1, i);
        b.setString(2, "batch " + i);
        b.addBatch();
      }
      b.executeBatch();
      // Many rows, fetched in several blocks.
      PreparedStatement m = c.prepareStatement("INSERT INTO items (id, name, qty) VALUES (?, ?, ?)");
      for (int i = 100; i < 1100; i++) {
        m.setInt(1, i);
        m.setString(2, "row " + i + " padding padding padding padding padding padding");
        m.setShort(3, (short) (i % 100));
        m.addBatch();
      }
      m.executeBatch();
      int n = 0;
      try (ResultSet rs = s.executeQuery("SELECT * FROM items ORDER BY id")) {
        while (rs.next()) n++;
      }
      System.out.println("rows " + n);
      PreparedStatement q = c.prepareStatement("SELECT id, name FROM items WHERE qty = ? AND id > ?");
      for (int i = 0; i < 3; i++) {
        q.setShort(1, (short) (i + 1));
        q.setInt(2, 500);
        try (ResultSet rs = q.executeQuery()) {
          while (rs.next()) n++;
        }
      }
      // Updates and deletes with counts.
      System.out.println("updated " + s.executeUpdate("UPDATE items SET qty = 0 WHERE id >= 1000"));
      System.out.println("deleted " + s.executeUpdate("DELETE FROM items WHERE id BETWEEN 1050 AND 1059"));
      // Errors.
      expectError(s, "INSERT INTO items (id) VALUES (1)");
      expectError(s, "SELEKT 1 FROM items");
      expectError(s, "SELECT nosuch FROM items");
      try (PreparedStatement bad = c.prepareStatement("SELECT * FROM missing_table WHERE id = ?")) {
        throw new RuntimeException("prepare should fail");
      } catch (SQLException e) {
        System.out.println("error " + e.getSQLState());
      }
      // LOBs.
      PreparedStatement l = c.prepareStatement("INSERT INTO docs VALUES (?, ?, ?)");
      l.setInt(1, 1);
      l.setString(2, "a clob of text");
      l.setBytes(3, new byte[] {9, 8, 7});
      l.executeUpdate();
      StringBuilder big = new StringBuilder();
      for (int i = 0; i < 50000; i++) big.append((char) ('a' + i % 26));
      l.setInt(1, 2);
      l.setString(2, big.toString());
      l.setBytes(3, new byte[70000]);
      l.executeUpdate();
      try (ResultSet rs = s.executeQuery("SELECT id, body, bin FROM docs ORDER BY id")) {
        while (rs.next()) {
          System.out.println("doc " + rs.getInt(1) + " " + rs.getString(2).length() + " " + rs.getBytes(3).length);
        }
      }
      // CALL, with and without parameters.
      try (CallableStatement cs = c.prepareCall("CALL SYSCS_UTIL.SYSCS_SET_DATABASE_PROPERTY(?, ?)")) {
        cs.setString(1, "dbtap.test.property");
        cs.setString(2, "on");
        cs.execute();
      }
      s.execute("CALL SYSCS_UTIL.SYSCS_CHECKPOINT_DATABASE()");
      // A transaction with savepoints.
      c.setAutoCommit(false);
      s.executeUpdate("INSERT INTO items (id, name) VALUES (5000, 'kept')");
      Savepoint sp = c.setSavepoint("sp1");
      s.executeUpdate("INSERT INTO items (id, name) VALUES (5001, 'undone')");
      c.rollback(sp);
      c.releaseSavepoint(sp);
      c.commit();
      s.executeUpdate("DELETE FROM items WHERE id = 5000");
      c.rollback();
      c.setAutoCommit(true);
    }
    // A second user and database.
    try (Connection c = DriverManager.getConnection(base + "otherdb;create=true", "bob", "bobpw")) {
      Statement s = c.createStatement();
      s.execute("VALUES CURRENT_USER");
      s.execute("CREATE TABLE t (x INT)");
      s.execute("INSERT INTO t VALUES (1), (2), (3)");
      try (ResultSet rs = s.executeQuery("SELECT SUM(x) FROM t")) {
        rs.next();
        System.out.println("sum " + rs.getInt(1));
      }
    }
    // Failed logins: a wrong password, an unknown database.
    try {
      DriverManager.getConnection(base + "appdb", "app", "wrong-password").close();
    } catch (SQLException e) {
      System.out.println("login " + e.getSQLState());
    }
    try {
      DriverManager.getConnection(base + "nosuchdb", "app", "apppw").close();
    } catch (SQLException e) {
      System.out.println("login " + e.getSQLState());
    }
  }
}
