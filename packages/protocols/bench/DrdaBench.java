// The statement load of the DRDA benchmark capture: prepared inserts,
// point queries and updates through Derby's client driver.
import java.sql.*;

public class DrdaBench {
  public static void main(String[] a) throws Exception {
    int n = Integer.parseInt(a[1]);
    try (Connection c = DriverManager.getConnection("jdbc:derby://127.0.0.1:" + a[0] + "/benchdb;create=true")) {
      Statement s = c.createStatement();
      s.execute("CREATE TABLE acct (id INT PRIMARY KEY, owner VARCHAR(64), balance DECIMAL(12,2), updated TIMESTAMP)");
      PreparedStatement ins = c.prepareStatement("INSERT INTO acct VALUES (?, ?, ?, CURRENT_TIMESTAMP)");
      PreparedStatement sel = c.prepareStatement("SELECT id, owner, balance FROM acct WHERE id BETWEEN ? AND ?");
      PreparedStatement upd = c.prepareStatement("UPDATE acct SET balance = balance + ? WHERE id = ?");
      for (int i = 0; i < n; i++) {
        switch (i % 3) {
          case 0:
            ins.setInt(1, i);
            ins.setString(2, "owner-" + (i % 500));
            ins.setBigDecimal(3, new java.math.BigDecimal(i).movePointLeft(2));
            ins.executeUpdate();
            break;
          case 1:
            sel.setInt(1, i - 30);
            sel.setInt(2, i);
            try (ResultSet rs = sel.executeQuery()) {
              while (rs.next()) rs.getString(2);
            }
            break;
          default:
            upd.setBigDecimal(1, new java.math.BigDecimal("1.50"));
            upd.setInt(2, i - 2);
            upd.executeUpdate();
        }
      }
      try (ResultSet rs = s.executeQuery("SELECT * FROM acct")) {
        while (rs.next()) rs.getString(2);
      }
    }
  }
}
